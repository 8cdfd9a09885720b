#include "agent/step_setup.h"

#include <set>

#include "agent/scheduler.h"

namespace boxcar::agent {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

using EnvMap = std::map<std::string, std::string>;

executors::NetworkMode network_of(pipeline::Network n) {
  switch (n) {
    case pipeline::Network::job: return executors::NetworkMode::job;
    case pipeline::Network::none: return executors::NetworkMode::none;
    case pipeline::Network::host: return executors::NetworkMode::host;
  }
  return executors::NetworkMode::job;
}

// The run's image for `ref`, or why there is none (an Error whose subject is "image").
Result<const RunImage*> image_for(const RunImages* images, const std::string& ref) {
  const auto it = images ? images->find(ref) : RunImages::const_iterator{};
  if (!images || it == images->end()) {
    return Error{"image \"" + ref + "\" was not pulled", 0, ErrorCode::internal, "image"};
  }
  if (!it->second.ok()) {
    const Error& e = it->second.error();
    return Error{e.message, e.err, e.code, "image"};
  }
  return &it->second.value();
}

// "NAME=value" entries layered over `env`: later ones win, as in a shell.
void layer(EnvMap& env, const std::vector<std::string>& entries) {
  for (const std::string& e : entries) {
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    env[e.substr(0, eq)] = e.substr(eq + 1);
  }
}

std::vector<std::string> flatten(const EnvMap& env) {
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

Result<executors::SandboxSpec> step_spec(const pipeline::ExpandedPipeline& p, const pipeline::ConcreteStep& cs,
                                         const StepLimits& limits) {
  executors::SandboxSpec spec;
  spec.name = cs.name;
  spec.image = cs.step.image;
  spec.network = network_of(cs.step.network);
  if (Status st = apply_step_limits(p, cs, limits, spec); !st.ok()) {
    return Error{st.error().message, st.error().err, st.error().code, "resources"};
  }
  return spec;
}

// A service from its own image: the step's limits, the job's network, the image's entrypoint
// and command (or `run` through the step's shell), the image's Env under the step's and its own.
Result<Sidecar> sidecar(const executors::SandboxSpec& step, const pipeline::ConcreteStep& cs,
                        const pipeline::Service& svc, const RunImages* images) {
  auto found = image_for(images, svc.image);
  if (!found.ok()) return found.error();
  const images::PulledImage& image = (*found)->image;
  if (cs.step.network != pipeline::Network::job) {
    std::string mode = cs.step.network == pipeline::Network::none ? "none" : "host";
    return Error{"service \"" + svc.name + "\" runs from an image on the job's network, which step \"" + cs.name +
                     "\" (network = \"" + mode + "\") cannot reach; run it without \"image\" or drop network = \"" +
                     mode + "\"",
                 0, ErrorCode::invalid_input, "image"};
  }
  Sidecar s;
  s.spec = step;
  s.spec.name = svc.name;
  s.spec.image = svc.image;
  s.spec.network = executors::NetworkMode::job;
  s.spec.layers = image.layers;
  executors::ExecRequest& req = s.request;
  if (!svc.run.empty()) {
    req.argv = cs.step.shell;
    req.argv.push_back(svc.run);
    req.workdir = cs.step.workdir;
  } else {
    req.argv = image.config.entrypoint;
    const auto& cmd = svc.command.empty() ? image.config.cmd : svc.command;
    req.argv.insert(req.argv.end(), cmd.begin(), cmd.end());
    req.workdir = image.config.working_dir.empty() ? "/" : image.config.working_dir;
  }
  if (req.argv.empty()) {
    return Error{"service \"" + svc.name + "\": image \"" + svc.image +
                     "\" has neither an Entrypoint nor a Cmd; give the service a \"run\" or a \"command\"",
                 0, ErrorCode::invalid_input, "image"};
  }
  EnvMap env = {{"PATH", kDefaultPath}};
  layer(env, image.config.env);
  for (const auto& [k, v] : cs.step.env) env[k] = v;
  for (const auto& [k, v] : svc.env) env[k] = v;
  req.env = flatten(env);
  req.user = image.config.user;
  return s;
}

}  // namespace

std::vector<std::string> image_refs(const pipeline::ExpandedPipeline& pipeline) {
  std::set<std::string> refs;
  for (const pipeline::ConcreteStep& cs : pipeline.steps) {
    if (cs.step.image != "host") refs.insert(cs.step.image);
    for (const pipeline::Service& svc : cs.step.services) {
      if (!svc.image.empty()) refs.insert(svc.image);
    }
  }
  return {refs.begin(), refs.end()};
}

std::vector<std::string> step_environment(const pipeline::ConcreteStep& cs, const SchedulerOptions& options,
                                          const std::string& workspace_path, const images::ImageConfig* image) {
  EnvMap env = {{"PATH", kDefaultPath}};
  if (image) {
    layer(env, image->env);
    // Another user's HOME comes from the image's passwd (init looks it up); root's is /root,
    // as Docker gives it.
    const std::string& u = image->user;
    if (!env.count("HOME") && (u.empty() || u == "root" || u == "0" || u.starts_with("0:") || u.starts_with("root:"))) {
      env["HOME"] = "/root";
    }
  } else {
    env["HOME"] = "/tmp";
    env["LANG"] = "C.UTF-8";
  }
  env["CI"] = "true";
  env["BOXCAR"] = "true";
  env["BOXCAR_JOB_ID"] = options.job_id;
  env["BOXCAR_STEP"] = cs.name;
  env["BOXCAR_COMMIT"] = options.commit;
  env["BOXCAR_BRANCH"] = options.branch;
  env["BOXCAR_EVENT"] = options.event;
  env["BOXCAR_WORKSPACE"] = workspace_path;
  for (const auto& [k, v] : options.run_env) env[k] = v;
  for (const auto& [k, v] : cs.matrix_values) env["BOXCAR_MATRIX_" + k] = v;
  for (const auto& [k, v] : cs.step.env) env[k] = v;
  for (const auto& name : cs.step.secrets) {
    auto it = options.secrets.find(name);
    if (it != options.secrets.end()) env[name] = it->second;
  }
  return flatten(env);
}

StepSetup step_setup(const pipeline::ExpandedPipeline& p, const pipeline::ConcreteStep& cs,
                     const SchedulerOptions& options, const std::string& workspace_path, const RunImages* images) {
  StepSetup setup;
  setup.spec = step_spec(p, cs, options.limits);
  const images::ImageConfig* config = nullptr;
  if (setup.spec.ok() && cs.step.image != "host") {
    auto found = image_for(images, cs.step.image);
    if (found.ok()) {
      setup.spec->layers = (*found)->image.layers;
      config = &(*found)->image.config;
      setup.user = config->user;
    } else {
      setup.spec = found.error();
    }
  }
  setup.env = step_environment(cs, options, workspace_path, config);
  for (const auto& name : cs.step.secrets) {
    if (setup.spec.ok() && !options.secrets.count(name)) {
      setup.spec = Error{"secret " + name + " is declared by step \"" + cs.name + "\" but not set: "
                         "on a server, `boxcar secret set " + name + " --repo URL` (or without "
                         "--repo for every repository); with boxcar run, --secret " + name +
                         "=VALUE or export " + name, 0, ErrorCode::internal, "secrets"};
    }
  }
  if (!setup.spec.ok()) return setup;
  for (size_t i = 0; i < cs.step.services.size(); ++i) {
    const pipeline::Service& svc = cs.step.services[i];
    if (!svc.image.empty()) setup.sidecars.emplace(i, sidecar(*setup.spec, cs, svc, images));
  }
  return setup;
}

}  // namespace boxcar::agent

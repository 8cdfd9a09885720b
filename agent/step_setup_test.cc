// StepSetup as data: what a step and its sidecars get from the run's images.
#include "agent/step_setup.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "agent/scheduler.h"

namespace boxcar::agent {
namespace {

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

RunImages images_with(const std::string& ref, images::ImageConfig config) {
  RunImages images;
  images::PulledImage pulled;
  pulled.reference = "registry.test/" + ref;
  pulled.layers = {"/store/layers/a/fs", "/store/layers/b/fs"};
  pulled.config = std::move(config);
  images.emplace(ref, RunImage{pulled, nullptr});
  return images;
}

pipeline::ConcreteStep step_in(const std::string& image) {
  pipeline::ConcreteStep cs;
  cs.name = cs.base_name = cs.step.name = "test";
  cs.step.run = "make test";
  cs.step.image = image;
  return cs;
}

TEST(StepSetup, ImageEnvIsTheBaseAndTheStepsEnvWins) {
  images::ImageConfig config;
  config.env = {"PATH=/opt/node/bin:/usr/bin", "NODE_VERSION=20", "SHARED=from-image"};
  auto images = images_with("node:20", config);
  pipeline::ExpandedPipeline p;
  p.steps = {step_in("node:20")};
  p.steps[0].step.env = {{"SHARED", "from-step"}};
  SchedulerOptions o;
  StepSetup s = step_setup(p, p.steps[0], o, "/workspace", &images);
  ASSERT_TRUE(s.spec.ok()) << s.spec.error().message;
  EXPECT_EQ(s.spec->layers.size(), 2u);
  EXPECT_TRUE(has(s.env, "PATH=/opt/node/bin:/usr/bin"));
  EXPECT_TRUE(has(s.env, "NODE_VERSION=20"));
  EXPECT_TRUE(has(s.env, "SHARED=from-step"));
  EXPECT_TRUE(has(s.env, "HOME=/root"));
  EXPECT_TRUE(has(s.env, "BOXCAR_WORKSPACE=/workspace"));
  EXPECT_FALSE(std::any_of(s.env.begin(), s.env.end(), [](const std::string& e) { return e.starts_with("LANG="); }));
  EXPECT_EQ(s.user, "");
  // Control: a host step keeps boxcar's PATH, HOME and LANG.
  pipeline::ConcreteStep host = step_in("host");
  StepSetup h = step_setup(p, host, o, "/workspace", &images);
  EXPECT_TRUE(has(h.env, "HOME=/tmp"));
  EXPECT_TRUE(has(h.env, "LANG=C.UTF-8"));
}

TEST(StepSetup, ImageUserAndNoHomeOfOurs) {
  images::ImageConfig config;
  config.user = "node";
  auto images = images_with("node:20", config);
  pipeline::ExpandedPipeline p;
  p.steps = {step_in("node:20")};
  StepSetup s = step_setup(p, p.steps[0], SchedulerOptions{}, "/workspace", &images);
  EXPECT_EQ(s.user, "node");
  // init sets HOME from the image's passwd entry for "node".
  EXPECT_FALSE(std::any_of(s.env.begin(), s.env.end(), [](const std::string& e) { return e.starts_with("HOME="); }));
}

TEST(StepSetup, AnImageThatFailedIsASetupErrorOfItsSteps) {
  RunImages images;
  images.emplace("gone:1", Error{"image \"gone:1\" not found in registry docker.io", 0, ErrorCode::not_found});
  pipeline::ExpandedPipeline p;
  p.steps = {step_in("gone:1")};
  StepSetup s = step_setup(p, p.steps[0], SchedulerOptions{}, "/workspace", &images);
  ASSERT_FALSE(s.spec.ok());
  EXPECT_EQ(s.spec.error().subject, "image");
  EXPECT_NE(s.spec.error().message.find("not found in registry"), std::string::npos);
  StepSetup none = step_setup(p, p.steps[0], SchedulerOptions{}, "/workspace", nullptr);
  ASSERT_FALSE(none.spec.ok());
  EXPECT_EQ(none.spec.error().subject, "image");
}

TEST(StepSetup, SidecarRunsEntrypointAndCommandOnTheJobNetwork) {
  images::ImageConfig config;
  config.entrypoint = {"docker-entrypoint.sh"};
  config.cmd = {"postgres"};
  config.working_dir = "/var/lib/postgresql";
  config.env = {"PGDATA=/data"};
  config.user = "postgres";
  auto images = images_with("postgres:16", config);
  pipeline::ExpandedPipeline p;
  p.steps = {step_in("host")};
  pipeline::Service db;
  db.name = "db";
  db.image = "postgres:16";
  db.env = {{"POSTGRES_PASSWORD", "pw"}};
  pipeline::Service tuned = db;
  tuned.name = "tuned";
  tuned.command = {"postgres", "-c", "fsync=off"};
  pipeline::Service scripted = db;
  scripted.name = "scripted";
  scripted.run = "echo hi";
  p.steps[0].step.services = {db, tuned, scripted};
  StepSetup s = step_setup(p, p.steps[0], SchedulerOptions{}, "/workspace", &images);
  ASSERT_EQ(s.sidecars.size(), 3u);
  const Sidecar& a = *s.sidecars.at(0);
  EXPECT_EQ(a.request.argv, (std::vector<std::string>{"docker-entrypoint.sh", "postgres"}));
  EXPECT_EQ(a.request.workdir, "/var/lib/postgresql");
  EXPECT_EQ(a.request.user, "postgres");
  EXPECT_TRUE(has(a.request.env, "PGDATA=/data"));
  EXPECT_TRUE(has(a.request.env, "POSTGRES_PASSWORD=pw"));
  EXPECT_EQ(a.spec.network, executors::NetworkMode::job);
  EXPECT_EQ(a.spec.layers.size(), 2u);
  EXPECT_EQ(s.sidecars.at(1)->request.argv,
            (std::vector<std::string>{"docker-entrypoint.sh", "postgres", "-c", "fsync=off"}));
  EXPECT_EQ(s.sidecars.at(2)->request.argv, (std::vector<std::string>{"/bin/sh", "-e", "-c", "echo hi"}));
}

TEST(StepSetup, SidecarNeedsSomethingToRunAndTheJobNetwork) {
  auto images = images_with("scratch:1", images::ImageConfig{});
  pipeline::ExpandedPipeline p;
  p.steps = {step_in("host")};
  pipeline::Service empty;
  empty.name = "empty";
  empty.image = "scratch:1";
  p.steps[0].step.services = {empty};
  StepSetup s = step_setup(p, p.steps[0], SchedulerOptions{}, "/workspace", &images);
  ASSERT_FALSE(s.sidecars.at(0).ok());
  EXPECT_NE(s.sidecars.at(0).error().message.find("neither an Entrypoint nor a Cmd"), std::string::npos);

  p.steps[0].step.services[0].run = "true";
  for (auto net : {pipeline::Network::none, pipeline::Network::host}) {
    p.steps[0].step.network = net;
    StepSetup n = step_setup(p, p.steps[0], SchedulerOptions{}, "/workspace", &images);
    ASSERT_FALSE(n.sidecars.at(0).ok());
    EXPECT_NE(n.sidecars.at(0).error().message.find("cannot reach"), std::string::npos);
  }
  p.steps[0].step.network = pipeline::Network::job;  // control
  EXPECT_TRUE(step_setup(p, p.steps[0], SchedulerOptions{}, "/workspace", &images).sidecars.at(0).ok());
}

TEST(StepSetup, ImageRefsAreEachNamedOnce) {
  pipeline::ExpandedPipeline p;
  p.steps = {step_in("node:20"), step_in("host"), step_in("node:20")};
  pipeline::Service db;
  db.name = "db";
  db.image = "postgres:16";
  pipeline::Service local;
  local.name = "local";
  local.run = "true";
  p.steps[1].step.services = {db, local};
  EXPECT_EQ(image_refs(p), (std::vector<std::string>{"node:20", "postgres:16"}));
}

}  // namespace
}  // namespace boxcar::agent

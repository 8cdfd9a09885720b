#include "executors/oci/bundle.h"

#include <cmath>
#include <cstdio>

#include <boost/json.hpp>

#include "executors/native/proc.h"

namespace boxcar::executors::oci {

namespace json = boost::json;

namespace {

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object mount(const BundleMount& m) {
  return {{"destination", m.destination}, {"type", m.type}, {"source", m.source}, {"options", strings(m.options)}};
}

std::vector<BundleMount> mounts_of(const BundleConfig& c) {
  // What native's sandbox has, no more (no /sys, no /dev/mqueue).
  std::vector<BundleMount> m = {
      {"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=" + std::to_string(c.shm_bytes)}},
      {"/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev", "mode=1777", "size=" + std::to_string(c.tmp_bytes)}},
  };
  // "rro": read-only all the way down (mount_setattr), as the native template's binds are.
  for (const auto& dir : c.system_dirs) m.push_back({dir, "bind", dir, {"rbind", "ro", "rro", "nosuid", "nodev"}});
  // After /etc's bind: over the host's file, in the sandbox's mount namespace only.
  if (!c.resolv_conf.empty()) {
    m.push_back({"/etc/resolv.conf", "bind", c.resolv_conf, {"bind", "ro", "nosuid", "nodev", "noexec"}});
  }
  m.push_back({kInitInside, "bind", c.init_path, {"bind", "ro", "nosuid", "nodev"}});
  // A bind of the idmapped mount keeps its idmap (runc 1.1 cannot make one itself); rbind
  // carries the read-only .git binds made on it (git_readonly.h).
  if (!c.layered_workspace) m.push_back({"/workspace", "bind", c.workspace, {"rbind", "nosuid", "nodev"}});
  m.insert(m.end(), c.layered_mounts.begin(), c.layered_mounts.end());
  return m;
}

}  // namespace

std::string make_config_json(const BundleConfig& c) {
  char caps[32];
  std::snprintf(caps, sizeof caps, "--caps=%llx", static_cast<unsigned long long>(c.caps_mask));
  json::array cap_names = strings(c.cap_names);
  json::object process{
      {"terminal", false},
      {"user", {{"uid", 0}, {"gid", 0}}},
      {"args", json::array{kInitInside, caps}},
      {"env", json::array{}},
      {"cwd", "/"},
      // init is root of its user namespace with every capability there, as native's init; each
      // command keeps only caps_mask (init drops the rest before exec).
      {"capabilities", {{"bounding", cap_names}, {"effective", cap_names}, {"permitted", cap_names}}},
      {"noNewPrivileges", true},
  };
  json::array mounts;
  for (const auto& m : mounts_of(c)) mounts.push_back(mount(m));

  json::array namespaces;
  for (const char* type : {"user", "pid", "mount", "ipc", "uts", "cgroup"}) namespaces.push_back(json::object{{"type", type}});
  if (c.network == NetworkMode::job) namespaces.push_back(json::object{{"type", "network"}, {"path", c.netns_path}});
  if (c.network == NetworkMode::none) namespaces.push_back(json::object{{"type", "network"}});  // runc brings lo up

  json::object resources;
  if (c.memory_bytes) resources["memory"] = {{"limit", *c.memory_bytes}};
  if (c.pids) resources["pids"] = {{"limit", *c.pids}};
  if (c.net_class != 0) resources["network"] = {{"classID", c.net_class}};
  if (c.cpus) resources["cpu"] = {{"quota", std::llround(*c.cpus * 100000)}, {"period", 100000}};

  json::array ids{{{"containerID", 0}, {"hostID", c.id_base}, {"size", c.id_count}}};
  json::object linux{
      {"uidMappings", ids},
      {"gidMappings", ids},
      {"namespaces", std::move(namespaces)},
      {"resources", std::move(resources)},
      {"cgroupsPath", c.cgroups_path},
      // Nothing mounted on the host later shows up inside, nothing inside leaks out.
      {"rootfsPropagation", "private"},
      {"maskedPaths", strings(native::masked_proc_paths())},
      {"readonlyPaths", strings(native::read_only_proc_paths())},
  };
  if (!c.seccomp_json.empty()) linux["seccomp"] = json::parse(c.seccomp_json);

  json::object config{
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", {{"path", c.root}, {"readonly", c.root_readonly}}},
      {"hostname", c.hostname},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux)},
  };
  return json::serialize(config);
}

}  // namespace boxcar::executors::oci

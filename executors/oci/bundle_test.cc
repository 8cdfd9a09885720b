// make_config_json and seccomp_profile_json as data: what runc is told for a SandboxSpec.
#include "executors/oci/bundle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string_view>

#include <boost/json.hpp>

#include "executors/native/seccomp_filter.h"
#include "executors/oci/seccomp_profile.h"

namespace boxcar::executors::oci {
namespace {

namespace json = boost::json;

BundleConfig sample() {
  BundleConfig c;
  c.root = "/state/host-root";
  c.system_dirs = {"/usr", "/etc"};
  c.workspace = "/state/b/s1/workspace";
  c.init_path = "/state/i/boxcar-init";
  c.caps_mask = 0x5;
  c.cap_names = {"CAP_CHOWN", "CAP_DAC_READ_SEARCH"};
  c.hostname = "build";
  c.netns_path = "/proc/1/fd/7";
  c.tmp_bytes = 1 << 20;
  c.shm_bytes = 2 << 20;
  c.memory_bytes = 64 << 20;
  c.pids = 100;
  c.cpus = 0.5;
  c.cgroups_path = "boxcar/1-2/s1";
  c.seccomp_json = *seccomp_profile_json();
  return c;
}

const json::object* mount_at(const json::object& config, const std::string& dest) {
  for (const auto& m : config.at("mounts").as_array()) {
    if (m.at("destination").as_string() == dest) return &m.as_object();
  }
  return nullptr;
}

bool has_namespace(const json::object& config, const std::string& type, std::string* path = nullptr) {
  for (const auto& ns : config.at("linux").at("namespaces").as_array()) {
    if (ns.at("type").as_string() != type) continue;
    if (path && ns.as_object().contains("path")) *path = json::value_to<std::string>(ns.at("path"));
    return true;
  }
  return false;
}

TEST(OciBundle, ProcessIsInitWithTheCommandsCapabilitiesAndNoNewPrivileges) {
  auto config = json::parse(make_config_json(sample())).as_object();
  const auto& process = config.at("process").as_object();
  EXPECT_EQ(process.at("args").as_array(), (json::array{kInitInside, "--caps=5"}));
  EXPECT_TRUE(process.at("env").as_array().empty());
  EXPECT_TRUE(process.at("noNewPrivileges").as_bool());
  EXPECT_EQ(process.at("capabilities").at("bounding").as_array(), (json::array{"CAP_CHOWN", "CAP_DAC_READ_SEARCH"}));
  EXPECT_FALSE(process.at("capabilities").as_object().contains("ambient"));
  EXPECT_TRUE(config.at("root").at("readonly").as_bool());
}

TEST(OciBundle, NamespacesIdsAndLimits) {
  auto config = json::parse(make_config_json(sample())).as_object();
  for (const char* type : {"user", "pid", "mount", "ipc", "uts", "cgroup"}) EXPECT_TRUE(has_namespace(config, type)) << type;
  std::string netns;
  ASSERT_TRUE(has_namespace(config, "network", &netns));
  EXPECT_EQ(netns, "/proc/1/fd/7");
  const auto& linux = config.at("linux").as_object();
  EXPECT_EQ(linux.at("uidMappings").at(0).at("hostID").as_int64(), 100000);
  EXPECT_EQ(linux.at("gidMappings").at(0).at("size").as_int64(), 65536);
  EXPECT_EQ(json::value_to<uint64_t>(linux.at("resources").at("memory").at("limit")), 64u << 20);
  EXPECT_EQ(json::value_to<uint64_t>(linux.at("resources").at("pids").at("limit")), 100u);
  EXPECT_EQ(linux.at("resources").at("cpu").at("quota").as_int64(), 50000);
  EXPECT_EQ(linux.at("cgroupsPath").as_string(), "boxcar/1-2/s1");
  EXPECT_EQ(config.at("hostname").as_string(), "build");
}

TEST(OciBundle, NetworkNoneIsANewNamespaceAndHostIsNone) {
  BundleConfig c = sample();
  c.network = NetworkMode::none;
  std::string path;
  auto none = json::parse(make_config_json(c)).as_object();
  EXPECT_TRUE(has_namespace(none, "network", &path));
  EXPECT_EQ(path, "");
  c.network = NetworkMode::host;
  EXPECT_FALSE(has_namespace(json::parse(make_config_json(c)).as_object(), "network"));
}

TEST(OciBundle, MountsAreTheNativeSandboxs) {
  auto config = json::parse(make_config_json(sample())).as_object();
  const auto* tmp = mount_at(config, "/tmp");
  ASSERT_TRUE(tmp);
  EXPECT_NE(json::serialize(tmp->at("options")).find("size=1048576"), std::string::npos);
  const auto* shm = mount_at(config, "/dev/shm");
  ASSERT_TRUE(shm);
  EXPECT_NE(json::serialize(shm->at("options")).find("size=2097152"), std::string::npos);
  const auto* usr = mount_at(config, "/usr");
  ASSERT_TRUE(usr);
  EXPECT_EQ(usr->at("source").as_string(), "/usr");
  EXPECT_NE(json::serialize(usr->at("options")).find("\"ro\""), std::string::npos);
  const auto* ws = mount_at(config, "/workspace");
  ASSERT_TRUE(ws);
  EXPECT_EQ(ws->at("source").as_string(), "/state/b/s1/workspace");
  const auto* init = mount_at(config, kInitInside);
  ASSERT_TRUE(init);
  EXPECT_NE(json::serialize(init->at("options")).find("\"ro\""), std::string::npos);
  EXPECT_FALSE(mount_at(config, "/sys"));  // native shows no /sys either
  const auto& masked = config.at("linux").at("maskedPaths").as_array();
  EXPECT_NE(std::find(masked.begin(), masked.end(), json::value("/proc/kcore")), masked.end());
}

TEST(OciBundle, SeccompProfileCarriesTheNativeRules) {
  auto profile = json::parse(*seccomp_profile_json()).as_object();
  EXPECT_EQ(profile.at("defaultAction").as_string(), "SCMP_ACT_ALLOW");
  bool unshare = false, clone_newuser = false, setuid_chmod = false;
  for (const auto& rule : profile.at("syscalls").as_array()) {
    const auto& name = rule.at("names").at(0).as_string();
    if (name == "unshare") unshare = rule.at("errnoRet").as_int64() == EPERM;
    if (name == "clone" && json::value_to<uint64_t>(rule.at("args").at(0).at("value")) == 0x10000000) clone_newuser = true;
    if (name == "chmod" && json::value_to<uint64_t>(rule.at("args").at(0).at("valueTwo")) == 04000) setuid_chmod = true;
  }
  EXPECT_TRUE(unshare);
  EXPECT_TRUE(clone_newuser);
  EXPECT_TRUE(setuid_chmod);
}

// Every native rule is in the profile, with its errno and conditions: nothing is dropped.
TEST(OciBundle, SeccompProfileHasEveryNativeRule) {
  auto profile = seccomp_profile_json();
  ASSERT_TRUE(profile.ok()) << profile.error().message;
  json::value parsed = json::parse(*profile);
  const auto& syscalls = parsed.at("syscalls").as_array();
  std::vector<native::SeccompRule> rules = native::seccomp_rules();
  ASSERT_EQ(syscalls.size(), rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto& entry = syscalls[i].as_object();
    EXPECT_EQ(entry.at("names").at(0).as_string(), rules[i].name);
    EXPECT_EQ(entry.at("errnoRet").as_int64(), rules[i].err) << rules[i].name;
    size_t args = entry.contains("args") ? entry.at("args").as_array().size() : 0;
    EXPECT_EQ(args, rules[i].conditions.size()) << rules[i].name;
  }
  bool fchmodat2 = std::any_of(syscalls.begin(), syscalls.end(),
                               [](const json::value& e) { return e.at("names").at(0).as_string() == "fchmodat2"; });
  EXPECT_TRUE(fchmodat2);
}

int resolve_without_fchmodat2(const char* name) {
  return std::string_view(name) == "fchmodat2" ? -1 : libseccomp_resolve(name);
}
int resolve_without_kexec(const char* name) {
  return std::string_view(name) == "kexec_file_load" ? -1 : libseccomp_resolve(name);
}

// Attack: a libseccomp that cannot name fchmodat2 (older than 2.5.5) would let runc skip the
// setuid-bit rules for it. The profile is refused, naming the syscall. Control: a name with no
// fallback number is "not on this architecture" for native too, and is left out.
TEST(OciBundle, SeccompProfileRefusesARuleTheRuntimeCannotName) {
  auto refused = seccomp_profile_json(resolve_without_fchmodat2);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("fchmodat2"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("452"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("libseccomp"), std::string::npos) << refused.error().message;
  auto without = seccomp_profile_json(resolve_without_kexec);
  ASSERT_TRUE(without.ok()) << without.error().message;
  EXPECT_EQ(without->find("kexec_file_load"), std::string::npos);
  EXPECT_NE(without->find("fchmodat2"), std::string::npos);
}

}  // namespace
}  // namespace boxcar::executors::oci

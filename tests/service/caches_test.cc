// [[step.cache]] through the service: what one agent saved reaches the server and a second agent
// (its own store) restores it from there; a fork's pull request saves nothing, on the agent or
// the server, while the same pipeline from the repository itself does.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

constexpr const char* kSecret = "cache-hook-secret";

constexpr const char* kPipeline = R"toml(version = 1
[[step]]
name = "install"
run = """
if [ -e node_modules/dep/index.js ]; then echo "HAD $(cat node_modules/dep/index.js)"; else
  echo DOWNLOADING
  mkdir -p node_modules/dep && cat package-lock.json > node_modules/dep/index.js
fi
"""
[[step.cache]]
key = "deps-${hash:package-lock.json}"
restore_keys = ["deps-"]
paths = ["node_modules"]
)toml";

std::unique_ptr<Process> start_agent(const TempDir& work, const Server& server, const std::string& name) {
  return start_boxcar({"agent", "--server", server.url(), "--token", "tok", "--data", (work / name).string(),
                       "--name", name, "--labels", name, "--executor", "native", "--allow-local-repos"},
                      work.path(), name);
}

TEST(ServiceCaches, ASecondAgentRestoresFromTheServerAndAForkSavesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
  TempDir work;
  make_git_repo(work / "upstream", kPipeline, {{"package-lock.json", "v1\n"}});
  std::string fork_sha = make_git_repo(work / "fork", kPipeline, {{"package-lock.json", "forked\n"}});
  std::string upstream = (work / "upstream").string(), fork = (work / "fork").string();
  Server server(work.path(), {"--agents", "0", "--agent-token", "tok", "--webhook-secret", kSecret});
  ASSERT_TRUE(server.ok());
  auto a = start_agent(work, server, "agent-a");
  auto b = start_agent(work, server, "agent-b");

  long first = server.submit({{"repo", upstream}, {"labels", json::array{"agent-a"}}});
  auto done = server.wait_final(first);
  ASSERT_TRUE(done) << a->describe();
  std::string log = server.logs(first);
  ASSERT_EQ(str(*done, "state"), "success") << log;
  EXPECT_NE(log.find("DOWNLOADING"), std::string::npos) << log;
  EXPECT_NE(log.find(": saved ("), std::string::npos) << log;

  // agent-b's store is empty: it restores the server's copy (uploaded before the job completed).
  long second = server.submit({{"repo", upstream}, {"labels", json::array{"agent-b"}}});
  done = server.wait_final(second);
  ASSERT_TRUE(done) << b->describe();
  log = server.logs(second);
  ASSERT_EQ(str(*done, "state"), "success") << log;
  EXPECT_NE(log.find("restored (exact, from the server)"), std::string::npos) << log;
  EXPECT_NE(log.find("HAD v1"), std::string::npos) << log;
  EXPECT_EQ(log.find("DOWNLOADING"), std::string::npos) << log;

  // The attack: a fork's pull request (its own lock file: a miss) must not save; the control
  // above is the same pipeline saving from the repository itself. It does restore what its
  // base repository saved (by the key prefix), as GitHub Actions gives forks the base's caches.
  std::string body = json::serialize(json::object{
      {"action", "opened"},
      {"number", 9},
      {"pull_request",
       json::object{{"head", json::object{{"ref", "main"}, {"sha", fork_sha}, {"repo", json::object{{"clone_url", fork}}}}},
                    {"base", json::object{{"ref", "main"}, {"repo", json::object{{"clone_url", upstream}}}}}}}});
  auto sent = http_request(server.port(), "POST", "/hooks/github",
                           {{"X-GitHub-Event", "pull_request"},
                            {"X-GitHub-Delivery", "fork-9"},
                            {"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(kSecret, body)},
                            {"Content-Type", "application/json"}},
                           body);
  ASSERT_EQ(sent.status, 200) << sent.body;
  long forked = -1;
  ASSERT_TRUE(wait_until([&] {
    for (const auto& j : server.jobs()) {
      if (str(j, "event") == "pull_request") forked = num(j, "id");
    }
    return forked > 0;
  }, 30s, "the fork's job"));
  done = server.wait_final(forked);
  ASSERT_TRUE(done);
  log = server.logs(forked);
  ASSERT_EQ(str(*done, "state"), "success") << log;
  EXPECT_NE(log.find("not saved: a job from a fork's pull request restores caches but never saves them"),
            std::string::npos) << log;
  EXPECT_EQ(log.find(": saved ("), std::string::npos) << log;
  EXPECT_NE(log.find("HAD v1"), std::string::npos) << log;
  // Nothing of it on the server: its caches hold the repository's one entry only.
  size_t keys = 0;
  for (const auto& e : fs::recursive_directory_iterator(server.data_dir() / "caches")) {
    keys += e.is_regular_file() && e.path().parent_path().filename() == "keys";
  }
  EXPECT_EQ(keys, 1u);
}

}  // namespace
}  // namespace boxcar::service_test

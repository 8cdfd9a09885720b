// The daemon's secrets never reach a step: a real `boxcar serve` holds canary secrets given as
// flags, in its environment and in a file, and a job's step searches every file of /proc it can read for
// them. The control reads the same files of the daemon from the host and finds them.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <string>

#include <boost/json.hpp>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

// All canaries start with this; the probe greps for "[B]XCNRY" so that its own command line
// (which holds the pattern, not the word) never matches.
constexpr const char* kPrefix = "BXCNRY";

std::string canary(const std::string& what) {
  std::random_device rd;
  return std::string(kPrefix) + what + std::to_string(rd()) + std::to_string(rd());
}

// Every /proc file a step can read (of every process it can see, threads included), searched
// for the canary prefix; prints each distinct hit, what pid 1 is, and how many processes it saw.
constexpr const char* kProbe = R"probe(set +e
for f in /proc/[0-9]*/* /proc/[0-9]*/task/*/*; do
  [ -f "$f" ] && [ -r "$f" ] || continue
  case "$f" in */mem|*/pagemap|*/clear_refs) continue;; esac
  head -c 4000000 "$f" 2>/dev/null | tr '\0' '\n' | grep -a -o '[B]XCNRY[A-Za-z0-9_]*'
done | sort -u | sed "s/^/hit: /"
echo "pid1 $(tr '\0' ' ' < /proc/1/cmdline)"
ls /proc/[0-9]*/cmdline | wc -l | sed 's/^/cmdlines /'
)probe";

std::string pipeline() {
  std::string toml = "version = 1\n[[step]]\nname = \"probe\"\nenv = { STEP_OWN = \"" + std::string(kPrefix) +
                     "STEPOWN\" }\nrun = '''\n" + kProbe + "'''\n";
  return toml;
}

TEST(DaemonSecrets, NoStepFindsTheServersFlagsEnvironmentOrMemory) {
  TempDir work;
  make_git_repo(work / "repo", pipeline());
  std::string flag_token = canary("FLAGAGENTTOKEN");
  std::string env_webhook = canary("ENVWEBHOOK");
  std::string env_other = canary("ENVOTHER");
  std::string env_api = canary("ENVAPITOKEN");
  std::string file_gitlab = canary("FILEGITLABTOKEN");
  {
    std::ofstream f(work / "gitlab-token");
    f << file_gitlab << "\n";
  }
  int port = free_port();
  auto serve = start_boxcar({"serve", "--listen", "127.0.0.1:" + std::to_string(port), "--data",
                             (work / "data").string(), "--allow-local-repos", "--agent-token", flag_token,
                             "--gitlab-webhook-token-file", (work / "gitlab-token").string()},
                            work.path(), "serve",
                            {"BOXCAR_WEBHOOK_SECRET=" + env_webhook, "BOXCAR_TEST_OTHER=" + env_other,
                             "BOXCAR_API_TOKEN=" + env_api});
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + env_api}};
  ASSERT_TRUE(wait_until([&] { return http_request(port, "GET", "/healthz", {}, "", 5s).status == 200; }, 60s,
                         "boxcar serve healthy"))
      << serve->describe();

  // Control: the host reads the daemon's own /proc files and finds every canary.
  std::string proc = "/proc/" + std::to_string(serve->pid());
  std::string cmdline = read_file(proc + "/cmdline"), environ = read_file(proc + "/environ");
  EXPECT_NE(cmdline.find(flag_token), std::string::npos);
  EXPECT_NE(environ.find(env_webhook), std::string::npos);
  EXPECT_NE(environ.find(env_other), std::string::npos);
  EXPECT_NE(environ.find(env_api), std::string::npos);

  auto r = http_request(port, "POST", "/api/v1/jobs",
                        {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + env_api}},
                        json::serialize(json::object{{"repo", (work / "repo").string()}}));
  ASSERT_EQ(r.status, 201) << r.body;
  long id = json::parse(r.body).as_object().at("id").as_int64();
  std::string state;
  ASSERT_TRUE(wait_until(
      [&] {
        auto j = http_request(port, "GET", "/api/v1/jobs/" + std::to_string(id), auth);
        if (j.status != 200) return false;
        state = std::string(json::parse(j.body).as_object().at("state").as_string());
        return is_final_state(state);
      },
      120s, "job final"));
  std::string logs = http_request(port, "GET", "/api/v1/jobs/" + std::to_string(id) + "/logs", auth).body;
  EXPECT_EQ(state, "success") << logs << serve->describe();
  // Control inside: the probe finds a canary that is meant to be there (the step's own env).
  EXPECT_NE(logs.find(std::string("hit: ") + kPrefix + "STEPOWN"), std::string::npos) << logs;
  EXPECT_NE(logs.find("pid1 boxcar-init --caps="), std::string::npos) << logs;
  for (const std::string& secret : {flag_token, env_webhook, env_other, env_api, file_gitlab}) {
    EXPECT_EQ(logs.find(secret), std::string::npos) << secret << " leaked:\n" << logs;
  }
  // Nothing but the step's own canary was found.
  size_t found = 0;
  for (size_t at = logs.find("hit: "); at != std::string::npos; at = logs.find("hit: ", at + 1)) ++found;
  EXPECT_EQ(found, 1u) << logs;
  serve->signal(SIGTERM);
  serve->wait(30s);
}

}  // namespace
}  // namespace boxcar::service_test

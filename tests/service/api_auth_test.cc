// The CI service's front door against a real `boxcar serve`: the generated API token and the
// CLI that finds it, token files with scopes, anonymous and cross-origin requests, foreign Host
// headers, secrets given by environment and file, and the data directory's file modes after a
// real job. Each attack sits beside a control that shows the probe works where it should.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 07777;
  return st.st_mode & 07777;
}

std::string sha256sum(const std::string& text) {
  auto r = run_command({"/bin/sh", "-c", "printf %s \"$0\" | sha256sum", text});
  return r.out.substr(0, 64);
}

const std::string kPipeline =
    "version = 1\n[[step]]\nname = \"make\"\nrun = \"mkdir -p out && echo built > out/report.txt\"\n"
    "artifacts = [\"out/report.txt\"]\n";

TEST(ApiAuth, ServeWritesAnAdminTokenTheCliNeedsAndReusesItOnRestart) {
  TempDir work;
  make_git_repo(work / "repo", kPipeline);
  std::string token;
  write_file(work / "agent-token", "agent-secret\n");
  Server server(work.path(), {"--agent-token-file", (work / "agent-token").string(), "--executor", "host"});
  ASSERT_TRUE(server.ok());
  token = server.token();
  ASSERT_EQ(token.size(), 64u);
  EXPECT_EQ(mode_of(server.data_dir() / "api-token"), 0600u);
  // serve names the file, never the token.
  std::string err = server.process().err();
  EXPECT_NE(err.find((server.data_dir() / "api-token").string()), std::string::npos) << err;
  EXPECT_EQ(err.find(token), std::string::npos) << err;

  // The CLI without a token: refused, with a hint where to find one.
  auto anonymous = run_boxcar({"submit", "--server", server.url(), (work / "repo").string()}, work.path());
  EXPECT_EQ(anonymous.exit_code, 2) << anonymous.err;
  EXPECT_NE(anonymous.err.find("set BOXCAR_API_TOKEN"), std::string::npos) << anonymous.err;
  EXPECT_NE(anonymous.err.find("api-token"), std::string::npos) << anonymous.err;
  EXPECT_TRUE(server.jobs().empty());
  auto listing = run_boxcar({"jobs", "--server", server.url()}, work.path());
  EXPECT_EQ(listing.exit_code, 2) << listing.err;

  // Controls: BOXCAR_API_TOKEN, --token-file, and --token (which warns).
  auto by_env = server.cli({"submit", "--server", server.url(), (work / "repo").string()}, work.path());
  ASSERT_EQ(by_env.exit_code, 0) << by_env.err;
  EXPECT_EQ(by_env.err, "");
  auto job = server.wait_final(std::stol(trim(by_env.out)));
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << server.logs(std::stol(trim(by_env.out)));
  auto by_file = run_boxcar({"jobs", "--server", server.url(), "--token-file",
                             (server.data_dir() / "api-token").string()},
                            work.path());
  EXPECT_EQ(by_file.exit_code, 0) << by_file.err;
  EXPECT_NE(by_file.out.find(trim(by_env.out)), std::string::npos) << by_file.out;
  auto by_flag = run_boxcar({"jobs", "--server", server.url(), "--token", token}, work.path());
  EXPECT_EQ(by_flag.exit_code, 0) << by_flag.err;
  EXPECT_NE(by_flag.err.find("--token on the command line is visible to every local user in ps; "
                             "use BOXCAR_API_TOKEN or --token-file"),
            std::string::npos)
      << by_flag.err;

  // A restart on the same data directory keeps the token.
  server.process().signal(SIGTERM);
  ASSERT_TRUE(server.process().wait(60s));
  Server again(work.path(), {"--agent-token-file", (work / "agent-token").string(), "--executor", "host"},
               0, "serve2");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.token(), token);
  EXPECT_EQ(again.api("GET", "/api/v1/jobs").status, 200);
}

TEST(ApiAuth, ScopedTokensFromAFileAndAnonymousCallers) {
  TempDir work;
  write_file(work / "tokens.toml",
             "[[token]]\nname = \"dashboard\"\nsha256 = \"" + sha256sum("reader-secret") +
                 "\"\nscopes = [\"read\"]\n"
                 "[[token]]\nname = \"ci\"\nsha256 = \"" + sha256sum("writer-secret") +
                 "\"\nscopes = [\"read\", \"write\"]\n");
  Server server(work.path(), {"--agents", "0", "--api-tokens", (work / "tokens.toml").string()});
  ASSERT_TRUE(server.ok());
  EXPECT_FALSE(fs::exists(server.data_dir() / "api-token"));  // tokens were given
  int port = server.port();
  auto with = [](const std::string& token) {
    return std::map<std::string, std::string>{{"Authorization", "Bearer " + token},
                                              {"Content-Type", "application/json"}};
  };
  std::string body = R"({"repo": "/nowhere"})";

  auto reader_submit = http_request(port, "POST", "/api/v1/jobs", with("reader-secret"), body);
  EXPECT_EQ(reader_submit.status, 403) << reader_submit.body;
  auto created = http_request(port, "POST", "/api/v1/jobs", with("writer-secret"), body);
  ASSERT_EQ(created.status, 201) << created.body;
  std::string job = "/api/v1/jobs/" + std::to_string(num(json::parse(created.body).as_object(), "id"));
  EXPECT_EQ(http_request(port, "POST", job + "/cancel", with("reader-secret")).status, 403);
  EXPECT_EQ(http_request(port, "GET", job, with("reader-secret")).status, 200);

  // Anonymous: every user route says 401; the read token gets the same routes (control).
  for (const std::string& target : {std::string("/api/v1/jobs"), job, job + "/logs", job + "/artifacts",
                                    job + "/previews", std::string("/metrics")}) {
    auto anon = http_request(port, "GET", target);
    EXPECT_EQ(anon.status, 401) << target;
    EXPECT_EQ(anon.headers["www-authenticate"], "Bearer") << target;
    EXPECT_EQ(http_request(port, "GET", target, with("reader-secret")).status, 200) << target;
  }
  EXPECT_EQ(http_request(port, "POST", "/api/v1/jobs", {{"Content-Type", "application/json"}}, body).status, 401);
  // Secrets need the admin scope: 401 without a token, 403 with read or write (an admin
  // token's use is in webhook_test.cc's ServerSecrets).
  EXPECT_EQ(http_request(port, "GET", "/api/v1/secrets").status, 401);
  EXPECT_EQ(http_request(port, "PUT", "/api/v1/secrets/TOKEN", {}, "v").status, 401);
  EXPECT_EQ(http_request(port, "GET", "/api/v1/secrets", with("reader-secret")).status, 403);
  EXPECT_EQ(http_request(port, "PUT", "/api/v1/secrets/TOKEN", with("writer-secret"), "v").status, 403);
  EXPECT_EQ(http_request(port, "DELETE", "/api/v1/secrets/TOKEN", with("writer-secret")).status, 403);
  EXPECT_EQ(http_request(port, "POST", job + "/cancel").status, 401);

  // The CLI with the read token: a clear 403.
  auto submit = run_boxcar({"submit", "--server", server.url(), "/nowhere"}, work.path());
  EXPECT_EQ(submit.exit_code, 2);
  auto reader = run_command({boxcar_binary(), "submit", "--server", server.url(), "/nowhere"}, work.path(),
                            child_env(work.path(), {"BOXCAR_API_TOKEN=reader-secret"}));
  EXPECT_EQ(reader.exit_code, 2);
  EXPECT_NE(reader.err.find("lacks the \"write\" scope"), std::string::npos) << reader.err;
}

TEST(ApiAuth, ABadTokenFileStopsServeWithItsLine) {
  TempDir work;
  write_file(work / "tokens.toml", "[[token]]\nname = \"x\"\nsha256 = \"abc\"\nscopes = [\"read\"]\n");
  auto r = run_boxcar({"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data",
                       (work / "data").string(), "--agents", "0", "--api-tokens", (work / "tokens.toml").string()},
                      work.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find((work / "tokens.toml").string() + ":3:10: token \"x\": sha256 must be 64 hex digits"),
            std::string::npos)
      << r.err;
}

TEST(ApiAuth, AGiteaTokenWithoutTheForgeItMayGoToStopsServe) {
  // A Gitea or GitLab token goes only to the forges listed: serve refuses one with none listed
  // (else any signed webhook could name where it goes).
  TempDir work;
  write_file(work / "gitea.token", "gt-secret\n");
  auto r = run_boxcar({"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data",
                       (work / "data").string(), "--agents", "0", "--gitea-token-file",
                       (work / "gitea.token").string()},
                      work.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--gitea-token needs --gitea-url"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("gt-secret"), std::string::npos) << r.err;
}

TEST(ApiAuth, PublicReadOpensJobsLogsAndArtifactsButNotPreviewsOrMetrics) {
  TempDir work;
  make_git_repo(work / "repo", kPipeline);
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host", "--public-read"});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  ASSERT_TRUE(server.wait_final(id));
  std::string job = "/api/v1/jobs/" + std::to_string(id);
  int port = server.port();
  EXPECT_EQ(http_request(port, "GET", "/api/v1/jobs").status, 200);
  EXPECT_EQ(http_request(port, "GET", job).status, 200);
  EXPECT_NE(http_request(port, "GET", job + "/logs").body.find("make"), std::string::npos);
  EXPECT_EQ(http_request(port, "GET", job + "/artifacts/out/report.txt").body, "built\n");
  EXPECT_EQ(http_request(port, "GET", "/").status, 200);
  EXPECT_EQ(http_request(port, "GET", job + "/previews").status, 401);
  EXPECT_EQ(http_request(port, "GET", "/metrics").status, 401);
  EXPECT_EQ(http_request(port, "POST", "/api/v1/jobs", {{"Content-Type", "application/json"}},
                         R"({"repo": "/nowhere"})").status, 401);
  // Controls: the token reads previews and metrics.
  EXPECT_EQ(server.api("GET", job + "/previews").status, 200);
  EXPECT_EQ(server.api("GET", "/metrics").status, 200);
}

TEST(ApiAuth, AForeignHostHeaderIsRefusedAsDnsRebinding) {
  TempDir work;
  make_git_repo(work / "repo", kPipeline);
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host", "--public-url",
                              "http://ci.example.test:8080"});
  ASSERT_TRUE(server.ok());
  std::string port = std::to_string(server.port());
  for (const char* target : {"/api/v1/jobs", "/", "/metrics"}) {
    auto r = http_request(server.port(), "GET", target, server.auth({{"Host", "attacker.example:" + port}}));
    EXPECT_EQ(r.status, 421) << target << " " << r.body;
  }
  auto hook = http_request(server.port(), "POST", "/hooks/github", {{"Host", "attacker.example:" + port}}, "{}");
  EXPECT_EQ(hook.status, 421);
  // Controls: the listen address, localhost and --public-url's host; and the in-process agent
  // (which connects by the listen address) runs a job.
  for (const std::string& host : {"127.0.0.1:" + port, "localhost:" + port, std::string("ci.example.test")}) {
    EXPECT_EQ(http_request(server.port(), "GET", "/api/v1/jobs", server.auth({{"Host", host}})).status, 200) << host;
  }
  long id = server.submit({{"repo", (work / "repo").string()}});
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success");
}

TEST(ApiAuth, SecretsFromEnvironmentAndFilesAndAWarningForTheCommandLine) {
  TempDir work;
  make_git_repo(work / "repo", kPipeline);
  write_file(work / "webhook-secret", "hook-secret\n");
  int port = free_port();
  std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:" + std::to_string(port), "--data",
                                   (work / "data").string(), "--allow-local-repos", "--executor", "host",
                                   "--webhook-secret-file", (work / "webhook-secret").string()};
  auto quiet = start_boxcar(args, work.path(), "serve-env", {"BOXCAR_AGENT_TOKEN=env-agent-token",
                                                             "BOXCAR_API_TOKEN=env-api-token"});
  ASSERT_TRUE(wait_until([&] { return http_request(port, "GET", "/healthz").status == 200; }, 60s,
                         "serve is healthy"));
  EXPECT_EQ(quiet->err().find("warning"), std::string::npos) << quiet->err();
  EXPECT_EQ(quiet->err().find("no --webhook-secret"), std::string::npos) << quiet->err();
  EXPECT_EQ(http_request(port, "GET", "/api/v1/jobs", {{"Authorization", "Bearer env-api-token"}}).status, 200);
  EXPECT_FALSE(fs::exists(work / "data" / "api-token"));
  // The file's secret signs webhooks (its trailing newline is not part of it).
  std::string body = R"({"ref": "refs/heads/main"})";
  auto signed_hook = http_request(port, "POST", "/hooks/github",
                                  {{"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex("hook-secret", body)},
                                   {"X-GitHub-Event", "ping"}, {"X-GitHub-Delivery", "d1"},
                                   {"Content-Type", "application/json"}},
                                  body);
  EXPECT_NE(signed_hook.status, 401) << signed_hook.body;
  quiet->signal(SIGTERM);
  ASSERT_TRUE(quiet->wait(60s));

  // On the command line: it works, and warns about ps.
  int loud_port = free_port();
  auto loud = start_boxcar({"serve", "--listen", "127.0.0.1:" + std::to_string(loud_port), "--data",
                            (work / "data2").string(), "--agents", "0", "--agent-token", "cmdline-token",
                            "--api-token", "cmdline-api-token"},
                           work.path(), "serve-flags");
  ASSERT_TRUE(wait_until([&] { return http_request(loud_port, "GET", "/healthz").status == 200; }, 60s,
                         "serve is healthy"));
  EXPECT_NE(loud->err().find("--agent-token on the command line is visible to every local user in ps; "
                             "use BOXCAR_AGENT_TOKEN or --agent-token-file"),
            std::string::npos)
      << loud->err();
  EXPECT_NE(loud->err().find("--api-token on the command line"), std::string::npos) << loud->err();
  EXPECT_EQ(http_request(loud_port, "GET", "/api/v1/jobs", {{"Authorization", "Bearer cmdline-api-token"}}).status, 200);
}

TEST(ApiAuth, TheDataDirectoryAndEverythingInItAreTheServersAlone) {
  TempDir work;
  make_git_repo(work / "repo", kPipeline);
  // A data directory and database left world-readable by an older version: narrowed at start.
  fs::create_directories(work / "data");
  ::chmod((work / "data").c_str(), 0755);
  write_file(work / "data" / "boxcar.db", "");
  ::chmod((work / "data" / "boxcar.db").c_str(), 0644);
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  EXPECT_NE(server.process().err().find("was mode 0755"), std::string::npos) << server.process().err();
  EXPECT_NE(server.process().err().find("was mode 0644"), std::string::npos) << server.process().err();

  long id = server.submit({{"repo", (work / "repo").string()}});
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(id);
  const fs::path& data = server.data_dir();
  EXPECT_EQ(mode_of(data), 0700u);
  EXPECT_EQ(mode_of(data / "boxcar.db"), 0600u);
  EXPECT_EQ(mode_of(data / "api-token"), 0600u);
  for (const char* wal : {"boxcar.db-wal", "boxcar.db-shm"}) {
    if (fs::exists(data / wal)) {
      EXPECT_EQ(mode_of(data / wal), 0600u) << wal;
    }
  }
  // Every artifact blob and every directory above it; and nothing in the data directory is
  // open to group or others.
  // The agent may still be removing the job's workspace in the background: a walk that meets a
  // directory vanishing under it is walked again.
  std::vector<fs::path> paths;
  ASSERT_TRUE(wait_until([&] {
    paths.clear();
    std::error_code ec;
    for (fs::recursive_directory_iterator it(data, ec), end; it != end; it.increment(ec)) {
      if (ec) return false;
      if (!it->is_symlink(ec) && !ec) paths.push_back(it->path());
    }
    return !ec;
  }, 30s, "a whole walk of the data directory"));
  int blobs = 0;
  for (const fs::path& path : paths) {
    std::error_code ec;
    if (path.string().find("/sha256/") != std::string::npos && fs::is_regular_file(path, ec)) {
      ++blobs;
      EXPECT_EQ(mode_of(path), 0600u) << path;
    }
    if (path.parent_path() == data || path.string().find("/artifacts") != std::string::npos) {
      if (fs::exists(path, ec)) {
        EXPECT_EQ(mode_of(path) & 077, 0u) << path;
      }
    }
  }
  EXPECT_GE(blobs, 1);
}

}  // namespace
}  // namespace boxcar::service_test

// The service over TLS: a real `boxcar serve --tls-cert --tls-key` with a throwaway CA, the CLI
// and a remote agent speaking https to it (the CA given: control), and the attacks: no CA (an
// untrusted certificate), a name the certificate does not carry, plain http to the TLS port,
// tokens pointed at plain http on another machine (refused before any connection; the address
// is TEST-NET-1 and never reached), and a certificate or key serve cannot use.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <string>

#include "tests/service/harness.h"
#include "testing/test_ca.h"

namespace boxcar::service_test {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The throwaway CA: "server" is for IP 127.0.0.1 only (not "localhost"), "other" for
// other.example.
struct Certs {
  explicit Certs(const fs::path& dir) : ca(dir) {
    EXPECT_TRUE(ca.ok()) << ca.error();
    EXPECT_TRUE(ca.issue("server", "IP:127.0.0.1")) << ca.error();
    EXPECT_TRUE(ca.issue("other", "DNS:other.example")) << ca.error();
  }
  std::string ca_pem() const { return ca.ca_pem().string(); }
  boxcar::testing::TestCa ca;
};

// The admin API token the TLS servers run with and the clients send.
const std::vector<std::string> kApiEnv = {"BOXCAR_API_TOKEN=tls-test-api-token"};

// `boxcar serve` over TLS; ready once it says it listens.
struct TlsServer {
  TlsServer(const fs::path& work, const std::string& cert, const std::string& key,
            const std::vector<std::string>& extra)
      : port(free_port()) {
    std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:" + std::to_string(port),
                                     "--data", (work / "data").string(), "--allow-local-repos",
                                     "--tls-cert", cert, "--tls-key", key};
    args.insert(args.end(), extra.begin(), extra.end());
    proc = start_boxcar(args, work, "serve-tls", kApiEnv);
    ready = wait_until([&] { return contains(proc->err(), "listening on " + url()) || !proc->running(); },
                       60s, "boxcar serve --tls-cert to listen") &&
            proc->running();
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port); }
  int port;
  std::unique_ptr<Process> proc;
  bool ready = false;
};

TEST(TlsService, ClientsAndAgentsSpeakHttpsAndRefuseWhatTheyCannotVerify) {
  TempDir work;
  Certs certs(work.path());
  // The artifact (about 290 kB) goes up from the agent and down to the CLI over TLS.
  make_git_repo(work / "repo", "version = 1\n[[step]]\nname = \"hi\"\n"
                               "run = \"echo over-tls-output && seq 1 50000 > blob.txt\"\n"
                               "artifacts = [\"blob.txt\"]\n");
  std::string blob;
  for (int i = 1; i <= 50000; ++i) blob += std::to_string(i) + "\n";
  // One in-process agent (it reaches the server over https, trusting exactly its certificate).
  TlsServer server(work.path(), certs.ca.cert("server").string(), certs.ca.key("server").string(),
                   {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ready) << server.proc->describe();
  const fs::path& home = work.path();

  // Control: submit, jobs and logs -f over https with --ca-file; the in-process agent ran it.
  auto submit = run_boxcar({"submit", "--server", server.url(), "--ca-file", certs.ca_pem(),
                            (work / "repo").string()}, home, kApiEnv);
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;
  std::string id = trim(submit.out);
  auto logs = run_boxcar({"logs", "-f", "--server", server.url(), "--ca-file", certs.ca_pem(), id}, home, kApiEnv);
  EXPECT_EQ(logs.exit_code, 0) << logs.out << logs.err;
  EXPECT_TRUE(contains(logs.out, "over-tls-output")) << logs.out;
  // BOXCAR_CA_FILE does what --ca-file does.
  auto jobs = run_command({boxcar_binary(), "jobs", "--server", server.url()}, home,
                          child_env(home, {"BOXCAR_CA_FILE=" + certs.ca_pem(), kApiEnv[0]}));
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_TRUE(contains(jobs.out, id)) << jobs.out;

  // Attack: without the CA, the server's certificate is not trusted (the system store does
  // not know the throwaway CA), and nothing is sent.
  auto untrusted = run_boxcar({"jobs", "--server", server.url()}, home, kApiEnv);
  EXPECT_EQ(untrusted.exit_code, 3) << untrusted.out << untrusted.err;
  EXPECT_TRUE(contains(untrusted.err, "certificate is not trusted")) << untrusted.err;
  EXPECT_TRUE(contains(untrusted.err, "--ca-file")) << untrusted.err;
  // Attack: a name the certificate does not carry (it is for 127.0.0.1, not localhost).
  auto wrong_name = run_boxcar({"jobs", "--server", "https://localhost:" + std::to_string(server.port),
                                "--ca-file", certs.ca_pem()}, home, kApiEnv);
  EXPECT_EQ(wrong_name.exit_code, 3) << wrong_name.out << wrong_name.err;
  EXPECT_TRUE(contains(wrong_name.err, "not for this host")) << wrong_name.err;
  // Plain http to the TLS port: a clean answer that says https.
  auto plain = run_boxcar({"jobs", "--server", "http://127.0.0.1:" + std::to_string(server.port)}, home, kApiEnv);
  EXPECT_EQ(plain.exit_code, 2) << plain.out << plain.err;
  EXPECT_TRUE(contains(plain.err, "HTTPS only")) << plain.err;
  // A CA file that cannot be read is a usage error that names it.
  auto no_ca = run_boxcar({"jobs", "--server", server.url(), "--ca-file", (work / "nope.pem").string()}, home, kApiEnv);
  EXPECT_EQ(no_ca.exit_code, 2) << no_ca.err;
  EXPECT_TRUE(contains(no_ca.err, (work / "nope.pem").string())) << no_ca.err;

  // A remote agent over https with --ca-file claims and completes a job only it may take.
  fs::create_directories(work / "agent-home");
  auto agent = start_boxcar({"agent", "--server", server.url(), "--ca-file", certs.ca_pem(),
                             "--labels", "remote", "--executor", "host", "--name", "remote-tls", "--allow-local-repos",
                             "--data", (work / "agent-data").string()},
                            work / "agent-home", "agent-tls", {"BOXCAR_AGENT_TOKEN=tok"});
  auto labelled = run_boxcar({"submit", "--server", server.url(), "--ca-file", certs.ca_pem(),
                              "--label", "remote", (work / "repo").string()}, home, kApiEnv);
  ASSERT_EQ(labelled.exit_code, 0) << labelled.err;
  std::string remote_id = trim(labelled.out);
  auto remote_logs = run_boxcar({"logs", "-f", "--server", server.url(), "--ca-file", certs.ca_pem(),
                                 remote_id}, home, kApiEnv);
  EXPECT_EQ(remote_logs.exit_code, 0) << remote_logs.out << remote_logs.err << agent->describe();
  EXPECT_TRUE(contains(remote_logs.out, "over-tls-output")) << remote_logs.out;
  EXPECT_TRUE(contains(agent->err(), "remote-tls")) << agent->describe();
  auto download = run_boxcar({"artifacts", "--server", server.url(), "--ca-file", certs.ca_pem(),
                              "--download", (work / "dl").string(), remote_id}, home, kApiEnv);
  EXPECT_EQ(download.exit_code, 0) << download.out << download.err;
  EXPECT_TRUE(read_file(work / "dl" / "blob.txt") == blob) << "the artifact came back changed";
  agent->signal(SIGTERM);
  EXPECT_EQ(agent->wait(60s), 0) << agent->describe();

  // An agent that does not trust the CA never gets a job: it says why and keeps retrying.
  auto distrustful = start_boxcar({"agent", "--server", server.url(), "--executor", "host",
                                   "--data", (work / "agent2-data").string()},
                                  work / "agent-home", "agent-untrusted", {"BOXCAR_AGENT_TOKEN=tok"});
  EXPECT_TRUE(wait_until([&] { return contains(distrustful->err(), "certificate is not trusted"); },
                         60s, "the untrusting agent to report the certificate"))
      << distrustful->describe();
  distrustful->signal(SIGTERM);
  distrustful->wait(60s);
}

TEST(TlsService, TokensGoInClearOnlyToThisMachine) {
  TempDir work;
  const fs::path& home = work.path();
  // Attack: the agent token towards plain http on another machine, by flag or environment.
  // TEST-NET-1 (192.0.2.0/24) is never routed; the refusal comes before any connection.
  auto by_flag = run_boxcar({"agent", "--server", "http://192.0.2.1:8080", "--token", "tok",
                             "--data", (work / "a").string()}, home);
  EXPECT_EQ(by_flag.exit_code, 2) << by_flag.err;
  EXPECT_TRUE(contains(by_flag.err, "refusing to send the agent token over plain http to 192.0.2.1: "
                                    "use https (boxcar serve --tls-cert ...)"))
      << by_flag.err;
  auto by_env = run_command({boxcar_binary(), "agent", "--server", "http://ci.example:8080",
                             "--data", (work / "a").string()},
                            home, child_env(home, {"BOXCAR_AGENT_TOKEN=tok"}));
  EXPECT_EQ(by_env.exit_code, 2) << by_env.err;
  EXPECT_TRUE(contains(by_env.err, "refusing to send the agent token over plain http to ci.example"))
      << by_env.err;
  EXPECT_FALSE(fs::exists(work / "a")) << "the agent got as far as its data directory";

  // Control: plain http to 127.0.0.1 is allowed; the agent claims and completes a job.
  make_git_repo(work / "repo", "version = 1\n[[step]]\nname = \"hi\"\nrun = \"echo loopback-ok\"\n");
  Server server(work.path(), {"--agent-token", "tok", "--agents", "0"});
  ASSERT_TRUE(server.ok());
  auto agent = start_boxcar({"agent", "--server", server.url(), "--executor", "host",
                             "--allow-local-repos", "--data", (work / "agent-data").string()},
                            work.path(), "agent-loopback", {"BOXCAR_AGENT_TOKEN=tok"});
  long id = server.submit({{"repo", (work / "repo").string()}});
  auto job = server.wait_final(id);
  ASSERT_TRUE(job) << agent->describe();
  EXPECT_EQ(str(*job, "state"), "success") << agent->describe();
  agent->signal(SIGTERM);
  agent->wait(60s);
}

TEST(TlsService, ServeRefusesACertificateOrKeyItCannotUse) {
  TempDir work;
  Certs certs(work.path());
  auto serve = [&](const std::vector<std::string>& tls_args) {
    std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()),
                                     "--data", (work / "data").string(), "--agents", "0"};
    args.insert(args.end(), tls_args.begin(), tls_args.end());
    return run_boxcar(args, work.path());
  };
  std::string missing = (work / "missing.pem").string();
  auto no_cert = serve({"--tls-cert", missing, "--tls-key", certs.ca.key("server").string()});
  EXPECT_EQ(no_cert.exit_code, 2) << no_cert.err;
  EXPECT_TRUE(contains(no_cert.err, "--tls-cert: cannot read the certificate file " + missing)) << no_cert.err;
  auto mismatch = serve({"--tls-cert", certs.ca.cert("server").string(), "--tls-key",
                         certs.ca.key("other").string()});
  EXPECT_EQ(mismatch.exit_code, 2) << mismatch.err;
  EXPECT_TRUE(contains(mismatch.err, "--tls-key: the key file " + certs.ca.key("other").string() +
                                         " is not the key of the certificate"))
      << mismatch.err;
  auto half = serve({"--tls-cert", certs.ca.cert("server").string()});
  EXPECT_EQ(half.exit_code, 2) << half.err;
  EXPECT_TRUE(contains(half.err, "--tls-cert and --tls-key go together")) << half.err;
}

}  // namespace
}  // namespace boxcar::service_test

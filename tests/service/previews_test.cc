// Previews of jobs run by agents: the server lists them, the agent's proxy serves them after the
// job completed, and they close on cancel, at their preview_ttl, and when the agent drains.
#include <gtest/gtest.h>

#include <signal.h>

#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

constexpr const char* kMarker = "preview of commit under test";

// "web" serves the checked-out workspace; "smoke" fetches it on localhost through the job's
// network and prints the public URL it was given. The host executor shares the machine's
// network, so its tests pass a free port; in a sandbox the port is the job's own.
std::string pipeline(const std::string& ttl, int port = 8471) {
  std::string p = std::to_string(port);
  return "version = 1\n"
         "[[step]]\n"
         "name = \"web\"\n"
         "run = \"python3 -m http.server " + p + " --bind 127.0.0.1\"\n"
         "preview_ttl = \"" + ttl + "\"\n"
         "[[step.expose]]\n"
         "port = " + p + "\n"
         "name = \"web\"\n"
         "ready = { http = \"/index.html\" }\n"
         "[[step]]\n"
         "name = \"smoke\"\n"
         "needs = [\"web\"]\n"
         "run = \"\"\"\n"
         "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:" + p + "/index.html\").read().decode().strip())'\n"
         "echo \"public: $BOXCAR_PREVIEW_WEB\"\n"
         "\"\"\"\n";
}

struct Preview {
  std::string state, url, path_url, token;
  long port = -1;
  bool expires = false;
};

// The job's only preview as GET /api/v1/jobs/{id}/previews shows it.
std::optional<Preview> preview_of(Server& server, long id) {
  auto r = server.api("GET", "/api/v1/jobs/" + std::to_string(id) + "/previews");
  if (r.status != 200) {
    ADD_FAILURE() << "GET previews: " << r.status << " " << r.error << " " << r.body;
    return std::nullopt;
  }
  json::value body = json::parse(r.body);
  const auto& list = body.at("previews").as_array();
  if (list.size() != 1) {
    ADD_FAILURE() << "expected one preview: " << r.body;
    return std::nullopt;
  }
  const auto& o = list[0].as_object();
  Preview p{str(o, "state"), str(o, "url"), str(o, "path_url"), "", num(o, "port"),
            o.contains("expires_at") && !o.at("expires_at").is_null()};
  std::string path = p.path_url;
  if (!path.empty() && path.back() == '/') path.pop_back();
  p.token = path.substr(path.rfind('/') + 1);
  return p;
}

// The Host header of a Host-form URL: "http://{host}/" -> "{host}".
std::string host_of(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  return rest.substr(0, rest.find('/'));
}

HttpResult fetch_path_form(int proxy_port, const std::string& token) {
  return http_request(proxy_port, "GET", "/preview/" + token + "/index.html");
}

TEST(Previews, ServedAfterTheJobAndClosedByCancel) {
  TempDir work;
  make_git_repo(work / "repo", pipeline("10m"), {{"index.html", std::string(kMarker) + "\n"}});
  int proxy = free_port();
  // The default executor: the server runs in a real sandbox, reached in its network namespace.
  Server server(work.path(), {"--agent-token", "tok", "--preview-listen",
                              "127.0.0.1:" + std::to_string(proxy)});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(id);

  std::string smoke = server.logs(id, "smoke");
  EXPECT_NE(smoke.find(kMarker), std::string::npos) << smoke;
  std::string label = "8471-" + std::to_string(id) + "-";
  EXPECT_NE(smoke.find("public: http://" + label), std::string::npos) << smoke;
  EXPECT_NE(server.logs(id, "web").find("preview web: http://" + label), std::string::npos)
      << server.logs(id, "web");

  auto p = preview_of(server, id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "open");
  EXPECT_EQ(p->port, 8471);
  EXPECT_TRUE(p->expires) << "the closing time is reported once the job ended";
  EXPECT_EQ(p->token.size(), 16u) << p->path_url;
  EXPECT_NE(p->url.find(label + p->token + ".localhost:" + std::to_string(proxy)), std::string::npos)
      << p->url;

  // The job is over; its preview is not. Host form and path form reach the sandboxed server.
  auto by_host = http_request(proxy, "GET", "/index.html", {{"Host", host_of(p->url)}});
  EXPECT_EQ(by_host.status, 200) << by_host.error << by_host.body;
  EXPECT_NE(by_host.body.find(kMarker), std::string::npos);
  auto by_path = fetch_path_form(proxy, p->token);
  EXPECT_EQ(by_path.status, 200) << by_path.error << by_path.body;
  EXPECT_NE(by_path.body.find(kMarker), std::string::npos);
  std::string wrong = p->token;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(fetch_path_form(proxy, wrong).status, 404);

  auto cancel = server.cli({"cancel", "--server", server.url(), std::to_string(id)}, work.path());
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out << cancel.err;
  EXPECT_NE(cancel.out.find("preview"), std::string::npos) << cancel.out;
  ASSERT_TRUE(wait_until([&] { return fetch_path_form(proxy, p->token).status == 404; }, 30s,
                         "the cancelled preview answers 404"));
  ASSERT_TRUE(wait_until(
      [&] {
        auto now = preview_of(server, id);
        return now && now->state == "closed";
      },
      30s, "the server lists the preview as closed"));
  // The job keeps its own final state; the agent let go of the sandbox and the workspace.
  EXPECT_EQ(str(*server.job(id), "state"), "success");
  ASSERT_TRUE(wait_until(
      [&] {
        std::error_code ec;
        return fs::is_empty(server.data_dir() / "agent-0" / "workspaces", ec);
      },
      30s, "the workspace is removed once the preview closed"));
}

TEST(Previews, AStandaloneAgentClosesThemAtTheirTtl) {
  TempDir work;
  make_git_repo(work / "repo", pipeline("2s", free_port()), {{"index.html", std::string(kMarker) + "\n"}});
  Server server(work.path(), {"--agent-token", "tok", "--agents", "0"});
  ASSERT_TRUE(server.ok());
  int proxy = free_port();
  auto agent = start_boxcar({"agent", "--server", server.url(), "--token", "tok", "--executor",
                             "host", "--data", (work / "agent").string(), "--preview-listen",
                             "127.0.0.1:" + std::to_string(proxy), "--allow-local-repos"},
                            work.path(), "agent");
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(id) << agent->describe();
  auto p = preview_of(server, id);
  ASSERT_TRUE(p);
  // Served until the TTL (2 s after the job ended) closes it; then 404 and "closed".
  ASSERT_TRUE(wait_until([&] { return fetch_path_form(proxy, p->token).status == 404; }, 60s,
                         "the preview closes at its preview_ttl"));
  ASSERT_TRUE(wait_until(
      [&] {
        auto now = preview_of(server, id);
        return now && now->state == "closed";
      },
      30s, "the server lists the preview as closed"));
  EXPECT_TRUE(agent->running()) << agent->describe();
}

TEST(Previews, DrainingTheServerClosesThem) {
  TempDir work;
  make_git_repo(work / "repo", pipeline("10m", free_port()), {{"index.html", std::string(kMarker) + "\n"}});
  int proxy = free_port();
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host", "--preview-listen",
                              "127.0.0.1:" + std::to_string(proxy)});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(id);
  auto p = preview_of(server, id);
  ASSERT_TRUE(p);
  ASSERT_EQ(fetch_path_form(proxy, p->token).status, 200);
  server.process().signal(SIGTERM);
  auto code = server.process().wait(60s);
  ASSERT_TRUE(code) << server.process().describe();
  EXPECT_EQ(*code, 0) << server.process().describe();
  EXPECT_NE(server.process().err().find("closing the previews"), std::string::npos)
      << server.process().describe();
  EXPECT_NE(fetch_path_form(proxy, p->token).status, 200);
}

}  // namespace
}  // namespace boxcar::service_test

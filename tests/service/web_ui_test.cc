// The web UI and preview URLs in a real browser: Debian's chromium, headless, loads the pages
// of a real `boxcar serve` and reports the DOM it ended up with (after any script ran).
#include <gtest/gtest.h>

#include <future>
#include <regex>
#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

// The DOM chromium built from `url`, serialized; "" (with a failure recorded) if it failed.
// `settle`: let the page's scripts and the navigations they start run first (3 s of virtual
// time: less than the 5 s after which the job list reloads itself).
std::string browser_dom(const fs::path& home, const std::string& url, bool settle = false) {
  // --no-sandbox: the suite runs as root, where chromium refuses its own sandbox. The page is
  // ours and served on loopback; the browser's sandbox is not what is under test.
  std::vector<std::string> argv = {"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                   "--no-first-run", "--disable-background-networking",
                                   "--disable-extensions",
                                   "--user-data-dir=" + (home / "chromium-profile").string()};
  if (settle) argv.push_back("--virtual-time-budget=3000");
  argv.push_back("--dump-dom");
  argv.push_back(url);
  auto r = run_command(argv, home, child_env(home));
  if (r.exit_code != 0 || r.out.empty()) {
    ADD_FAILURE() << "chromium --dump-dom " << url << " exited " << r.exit_code << "\n" << r.err;
    return "";
  }
  return r.out;
}

// A static web server on another port of 127.0.0.1 (so the same site as the boxcar server, a
// different origin), serving `dir`.
std::unique_ptr<Process> serve_static(const fs::path& dir, int port) {
  auto p = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/python3", "-m", "http.server", std::to_string(port),
                               "--bind", "127.0.0.1", "--directory", dir.string()},
      child_env(dir), dir / "logs", "static-" + std::to_string(port));
  wait_until([&] { return http_request(port, "GET", "/").status == 200; }, 30s, "python3 serves " + dir.string());
  return p;
}

// Signs in to the web UI the way a user does, with the login form posted by the browser
// itself (a page that submits it on load), and returns the DOM of `path` it lands on.
std::string browser_login_dom(const fs::path& home, Server& server, const std::string& path,
                              const std::string& token = "") {
  fs::path site = home / "login-site";
  write_file(site / "login.html",
             "<!doctype html><form id=f method=post action=\"" + server.url() + "/login\">"
             "<input name=token value=\"" + (token.empty() ? server.token() : token) + "\">"
             "<input name=next value=\"" + path + "\"></form>"
             "<script>document.getElementById('f').submit()</script>\n");
  int port = free_port();
  auto web = serve_static(site, port);
  return browser_dom(home, "http://127.0.0.1:" + std::to_string(port) + "/login.html", true);
}

std::string title_of(const std::string& dom) {
  std::smatch m;
  if (std::regex_search(dom, m, std::regex("<title>([^<]*)</title>"))) return m[1];
  return "";
}

TEST(WebUi, PagesRenderInABrowserAndReportedTextNeverRunsAsMarkup) {
  TempDir work;
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  // A repository "path" that is HTML: it reaches the job list, the job page and the reason
  // (the checkout fails), each a chance for it to become an element and run its handler.
  std::string hostile = "/nowhere/<img src=x onerror=\"document.title='pwned'\">";
  long id = server.submit({{"repo", hostile}, {"ref", "<b>main</b>"}});
  ASSERT_GT(id, 0);
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "error");

  std::string list = browser_login_dom(work.path(), server, "/");
  EXPECT_EQ(title_of(list), "boxcar jobs") << list;
  EXPECT_NE(list.find("href=\"/jobs/" + std::to_string(id) + "\""), std::string::npos) << list;
  EXPECT_NE(list.find("&lt;img src=x onerror="), std::string::npos) << list;
  EXPECT_EQ(list.find("<img"), std::string::npos) << list;
  EXPECT_EQ(list.find("<b>main</b>"), std::string::npos) << list;

  std::string page = browser_login_dom(work.path(), server, "/jobs/" + std::to_string(id));
  EXPECT_EQ(title_of(page), "boxcar job #" + std::to_string(id)) << page;
  EXPECT_NE(page.find("class=\"badge error\""), std::string::npos) << page;
  EXPECT_EQ(page.find("<img"), std::string::npos) << page;

  std::string missing = browser_login_dom(work.path(), server, "/jobs/999999");
  EXPECT_NE(missing.find("No such job"), std::string::npos) << missing;
}

TEST(WebUi, APreviewLinkOpensInABrowserThroughLocalhostSubdomains) {
  constexpr const char* kMarker = "served from the job's workspace";
  TempDir work;
  make_git_repo(work / "repo",
                "version = 1\n"
                "[[step]]\n"
                "name = \"web\"\n"
                "run = \"python3 -m http.server 8471 --bind 127.0.0.1\"\n"
                "[[step.expose]]\n"
                "port = 8471\n"
                "name = \"site\"\n",
                {{"index.html", std::string("<!doctype html><title>site</title><p id=m>") + kMarker +
                                    "</p><script>document.title = 'scripted ' + location.host;</script>\n"}});
  int proxy = free_port();
  Server server(work.path(), {"--agent-token", "tok", "--preview-listen",
                              "127.0.0.1:" + std::to_string(proxy)});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(id);

  // The job page links the open preview in both forms (for a signed-in reader).
  std::string page = browser_login_dom(work.path(), server, "/jobs/" + std::to_string(id));
  std::smatch host_link, path_link;
  std::string host_re = "href=\"(http://8471-" + std::to_string(id) + "-[a-z2-7]{16}\\.localhost:" +
                        std::to_string(proxy) + "/)\"";
  ASSERT_TRUE(std::regex_search(page, host_link, std::regex(host_re))) << page;
  std::string path_re = "href=\"(http://127\\.0\\.0\\.1:" + std::to_string(proxy) + "/preview/[a-z2-7]{16}/)\"";
  ASSERT_TRUE(std::regex_search(page, path_link, std::regex(path_re))) << page;

  // The browser resolves *.localhost to loopback by itself (no DNS set-up), reaches the proxy,
  // which routes by Host into the sandbox; the page's script runs with the preview's origin.
  std::string by_host = browser_dom(work.path(), host_link[1]);
  EXPECT_NE(by_host.find(kMarker), std::string::npos) << by_host;
  std::string host = std::string(host_link[1]).substr(7);
  host.pop_back();
  EXPECT_EQ(title_of(by_host), "scripted " + host) << by_host;
  std::string by_path = browser_dom(work.path(), path_link[1]);
  EXPECT_NE(by_path.find(kMarker), std::string::npos) << by_path;

  auto cancel = server.cli({"cancel", "--server", server.url(), std::to_string(id)}, work.path());
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(wait_until(
      [&] {
        std::string after = browser_dom(work.path(), host_link[1]);
        return after.find(kMarker) == std::string::npos && after.find("no such preview") != std::string::npos;
      },
      30s, "the closed preview is gone from the browser's view"));
}

// The count of HTTP answers with `code` in the server's metrics.
long answered(Server& server, int code) {
  auto r = server.api("GET", "/metrics");
  std::smatch m;
  std::regex line("boxcar_http_requests_total\\{code=\"" + std::to_string(code) + "\"\\} ([0-9]+)");
  return std::regex_search(r.body, m, line) ? std::stol(m[1]) : 0;
}

TEST(WebUi, AFormOnAnotherSiteCreatesNoJobAndCancelsNothing) {
  TempDir work;
  Server server(work.path(), {"--agents", "0"});  // jobs stay queued: cancellable
  ASSERT_TRUE(server.ok());
  long victim = server.submit({{"repo", "/nowhere"}});
  ASSERT_GT(victim, 0);
  // The victim is signed in to the web UI in this browser profile.
  std::string signed_in = browser_login_dom(work.path(), server, "/");
  EXPECT_NE(signed_in.find("signed in as"), std::string::npos) << signed_in;

  // The attacker's pages, on another site (localhost is not 127.0.0.1's site): the classic
  // text/plain form whose body is JSON, and the UI's cancel form with a guessed CSRF token.
  fs::path site = work / "attacker";
  write_file(site / "submit.html",
             "<!doctype html><form id=f method=post enctype=text/plain action=\"" + server.url() +
                 "/api/v1/jobs\"><input name='{\"repo\": \"/attacker\", \"x\": \"' value='\"}'></form>"
                 "<script>document.getElementById('f').submit()</script>\n");
  write_file(site / "cancel.html",
             "<!doctype html><form id=f method=post action=\"" + server.url() + "/jobs/" +
                 std::to_string(victim) + "/cancel\"><input name=csrf value=guess></form>"
                 "<script>document.getElementById('f').submit()</script>\n");
  int port = free_port();
  auto web = serve_static(site, port);
  std::string attacker = "http://localhost:" + std::to_string(port);

  long refused_before = answered(server, 401), redirected_before = answered(server, 303);
  browser_dom(work.path(), attacker + "/submit.html", true);
  browser_dom(work.path(), attacker + "/cancel.html", true);
  // The browser did post both (the server answered them), and nothing happened.
  EXPECT_EQ(answered(server, 401), refused_before + 1);
  EXPECT_GE(answered(server, 303) + answered(server, 403), redirected_before + 1);
  auto jobs = server.jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(str(jobs[0], "state"), "queued");

  // Control: the same JSON, sent as JSON with the token, creates the job.
  auto control = server.api("POST", "/api/v1/jobs", R"({"repo": "/attacker", "x": "="})");
  EXPECT_EQ(control.status, 201) << control.body;
  EXPECT_EQ(server.jobs().size(), 2u);
}


// The session cookie's value that `r` sets ("" when none).
std::string session_of(const HttpResult& r) {
  for (const auto& [k, v] : r.headers) {
    if (k == "set-cookie" && v.rfind("boxcar_session=", 0) == 0) return v.substr(15, v.find(';') - 15);
  }
  return "";
}

// Signs in over plain HTTP (the login form's post) and returns the session cookie's value.
std::string http_login(Server& server) {
  auto r = http_request(server.port(), "POST", "/login",
                        {{"Content-Type", "application/x-www-form-urlencoded"}},
                        "token=" + server.token() + "&next=/");
  EXPECT_EQ(r.status, 303) << r.body;
  return session_of(r);
}

// The CSRF token in a page's forms.
std::string csrf_of(const std::string& page) {
  std::smatch m;
  return std::regex_search(page, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")) ? std::string(m[1]) : "";
}

long followers(Server& server) {
  auto r = server.api("GET", "/metrics");
  std::smatch m;
  return std::regex_search(r.body, m, std::regex("\nboxcar_log_followers ([0-9]+)")) ? std::stol(m[1]) : -1;
}

TEST(WebUi, AJobPageFollowsItsLogLiveInColourAndPrintedMarkupStaysText) {
  TempDir work;
  fs::path go = work / "go", done = work / "done";
  make_git_repo(work / "repo",
                "version = 1\n"
                "[[step]]\n"
                "name = \"build\"\n"
                "run = \"echo built > out.txt; echo control-line\"\n"
                "artifacts = [\"out.txt\"]\n"
                "[[step]]\n"
                "name = \"live\"\n"
                "needs = [\"build\"]\n"
                "run = '''\n"  // literal: the printf escapes reach the shell
                "echo before\n"
                "until [ -e " + go.string() + " ]; do sleep 0.05; done\n"
                "printf '\\033[32mgreen\\033[0m live-line\\n'\n"
                "echo '<img src=x onerror=\"document.title=1\"><script>document.title=2</script>'\n"
                "until [ -e " + done.string() + " ]; do sleep 0.05; done\n"
                "'''\n");
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  ASSERT_TRUE(wait_until([&] { return server.logs(id, "live").find("before") != std::string::npos; },
                         60s, "the live step runs"))
      << server.logs(id);
  std::string path = "/jobs/" + std::to_string(id);
  // The browser loads the page while the step waits, then holds its event stream open (its
  // DOM is dumped once the stream ends, with what the script added by then).
  auto live = std::async(std::launch::async, [&] { return browser_login_dom(work.path(), server, path); });
  ASSERT_TRUE(wait_until([&] { return followers(server) == 1; }, 60s, "the page follows the log"));
  write_file(go, "");  // printed after the page was rendered: only the stream can bring it
  ASSERT_TRUE(wait_until([&] { return server.logs(id, "live").find("live-line") != std::string::npos; },
                         30s, "the live line is stored"));
  write_file(done, "");
  std::string dom = live.get();
  EXPECT_NE(dom.find("<span class=\"f2\">green</span> live-line"), std::string::npos) << dom;
  // Attack: the markup the step printed is text (no element, no handler ran); control: the
  // plain line beside it is there.
  EXPECT_NE(dom.find("&lt;img src=x onerror="), std::string::npos) << dom;
  EXPECT_EQ(dom.find("<img"), std::string::npos) << dom;
  EXPECT_EQ(title_of(dom), "boxcar job #" + std::to_string(id)) << dom;
  EXPECT_NE(dom.find("control-line"), std::string::npos) << dom;
  EXPECT_NE(dom.find("the job ended: success"), std::string::npos) << dom;

  // The finished page: the step graph shows the need (the agent reports StepRecord::needs once
  // the supersede branch is merged: until then this one check fails), the artifact link
  // downloads.
  std::string page = browser_dom(work.path(), server.url() + path);
  EXPECT_NE(page.find("needs build"), std::string::npos) << page;
  EXPECT_NE(page.find("<span class=\"f2\">green</span> live-line"), std::string::npos) << page;
  std::string artifact = path + "/artifacts/out.txt";
  EXPECT_NE(page.find("href=\"" + artifact + "\""), std::string::npos) << page;
  std::string file = browser_dom(work.path(), server.url() + artifact);
  EXPECT_NE(file.find("built"), std::string::npos) << file;
  // Attack: without a session the same link leads to the login page, not the file.
  auto anonymous = http_request(server.port(), "GET", artifact);
  EXPECT_EQ(anonymous.status, 303);
  EXPECT_EQ(anonymous.body.find("built"), std::string::npos);
}

TEST(WebUi, TheJobListFiltersAndPagesAndTheCancelFormNeedsItsCsrfToken) {
  TempDir work;
  Server server(work.path(), {"--agents", "0"});  // jobs stay queued: cancellable
  ASSERT_TRUE(server.ok());
  long a1 = server.submit({{"repo", "/repo/a"}, {"ref", "main"}});
  long b1 = server.submit({{"repo", "/repo/b"}, {"ref", "dev"}});
  long a2 = server.submit({{"repo", "/repo/a"}, {"ref", "main"}});
  ASSERT_GT(a1, 0);
  ASSERT_GT(b1, 0);
  ASSERT_GT(a2, 0);
  auto row = [](long id) { return "href=\"/jobs/" + std::to_string(id) + "\""; };
  std::string first = browser_login_dom(work.path(), server, "/");
  EXPECT_NE(first.find(row(b1)), std::string::npos) << first;
  // Repository a, a page of one: the newest, and an "older" link to the next.
  std::string page = browser_dom(work.path(), server.url() + "/?repo=%2Frepo%2Fa&ref=main&limit=1");
  EXPECT_NE(page.find(row(a2)), std::string::npos) << page;
  EXPECT_EQ(page.find(row(a1)), std::string::npos) << page;
  EXPECT_EQ(page.find(row(b1)), std::string::npos) << page;
  std::smatch older;
  ASSERT_TRUE(std::regex_search(page, older, std::regex("id=\"older\" href=\"([^\"]+)\""))) << page;
  std::string next = std::regex_replace(std::string(older[1]), std::regex("&amp;"), "&");
  std::string second = browser_dom(work.path(), server.url() + next);
  EXPECT_NE(second.find(row(a1)), std::string::npos) << second;
  EXPECT_EQ(second.find(row(a2)), std::string::npos) << second;
  EXPECT_EQ(second.find(row(b1)), std::string::npos) << second;
  std::string by_state = browser_dom(work.path(), server.url() + "/?state=cancelled");
  EXPECT_NE(by_state.find("No jobs match"), std::string::npos) << by_state;

  // The job page's cancel form, posted as the browser posts it: without its CSRF token it is
  // refused (attack), with it the job is cancelled (control).
  std::string cookie = "boxcar_session=" + http_login(server);
  std::string path = "/jobs/" + std::to_string(b1);
  auto shown = http_request(server.port(), "GET", path, {{"Cookie", cookie}});
  ASSERT_NE(shown.body.find("action=\"" + path + "/cancel\""), std::string::npos) << shown.body;
  std::string csrf = csrf_of(shown.body);
  ASSERT_FALSE(csrf.empty()) << shown.body;
  std::map<std::string, std::string> form{{"Cookie", cookie}, {"Content-Type", "application/x-www-form-urlencoded"}};
  EXPECT_EQ(http_request(server.port(), "POST", path + "/cancel", form, "csrf=guess").status, 403);
  EXPECT_EQ(str(*server.job(b1), "state"), "queued");
  auto cancelled = http_request(server.port(), "POST", path + "/cancel", form, "csrf=" + csrf);
  EXPECT_EQ(cancelled.status, 303);
  EXPECT_EQ(str(*server.job(b1), "state"), "cancelled");
  std::string after = browser_dom(work.path(), server.url() + path);
  EXPECT_NE(after.find("class=\"badge cancelled\""), std::string::npos) << after;
  EXPECT_NE(after.find("id=\"rerun\""), std::string::npos) << after;
}

// Needs the re-run engineer's rerun_job() (server/rerun.cc is a placeholder on main that
// answers "not built yet"): passes once that branch is merged.
TEST(WebUi, TheReRunButtonQueuesANewJobForTheSameCommit) {
  TempDir work;
  Server server(work.path(), {"--agents", "0"});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", "/repo/a"}, {"ref", "main"}});
  ASSERT_GT(id, 0);
  ASSERT_EQ(server.api("POST", "/api/v1/jobs/" + std::to_string(id) + "/cancel").status, 202);
  std::string cookie = "boxcar_session=" + http_login(server);
  std::string path = "/jobs/" + std::to_string(id);
  std::string csrf = csrf_of(http_request(server.port(), "GET", path, {{"Cookie", cookie}}).body);
  std::map<std::string, std::string> form{{"Cookie", cookie}, {"Content-Type", "application/x-www-form-urlencoded"}};
  EXPECT_EQ(http_request(server.port(), "POST", path + "/rerun", form, "csrf=guess").status, 403);
  EXPECT_EQ(server.jobs().size(), 1u);
  auto rerun = http_request(server.port(), "POST", path + "/rerun", form, "csrf=" + csrf);
  ASSERT_EQ(rerun.status, 303) << rerun.body;
  auto jobs = server.jobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(rerun.headers["location"], "/jobs/" + std::to_string(num(jobs[0], "id")));
}

}  // namespace
}  // namespace boxcar::service_test

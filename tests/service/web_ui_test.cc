// The web UI and preview URLs in a real browser: Debian's chromium, headless, loads the pages
// of a real `boxcar serve` and reports the DOM it ended up with (after any script ran).
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

// The DOM chromium built from `url`, serialized; "" (with a failure recorded) if it failed.
std::string browser_dom(const fs::path& home, const std::string& url) {
  // --no-sandbox: the suite runs as root, where chromium refuses its own sandbox. The page is
  // ours and served on loopback; the browser's sandbox is not what is under test.
  auto r = run_command({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-extensions",
                        "--user-data-dir=" + (home / "chromium-profile").string(), "--dump-dom", url},
                       home, child_env(home));
  if (r.exit_code != 0 || r.out.empty()) {
    ADD_FAILURE() << "chromium --dump-dom " << url << " exited " << r.exit_code << "\n" << r.err;
    return "";
  }
  return r.out;
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

  std::string list = browser_dom(work.path(), server.url() + "/");
  EXPECT_EQ(title_of(list), "boxcar jobs") << list;
  EXPECT_NE(list.find("href=\"/jobs/" + std::to_string(id) + "\""), std::string::npos) << list;
  EXPECT_NE(list.find("&lt;img src=x onerror="), std::string::npos) << list;
  EXPECT_EQ(list.find("<img"), std::string::npos) << list;
  EXPECT_EQ(list.find("<b>main</b>"), std::string::npos) << list;

  std::string page = browser_dom(work.path(), server.url() + "/jobs/" + std::to_string(id));
  EXPECT_EQ(title_of(page), "boxcar job #" + std::to_string(id)) << page;
  EXPECT_NE(page.find("class=\"error\""), std::string::npos) << page;
  EXPECT_EQ(page.find("<img"), std::string::npos) << page;

  std::string missing = browser_dom(work.path(), server.url() + "/jobs/999999");
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

  // The job page links the open preview in both forms.
  std::string page = browser_dom(work.path(), server.url() + "/jobs/" + std::to_string(id));
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

  auto cancel = run_boxcar({"cancel", "--server", server.url(), std::to_string(id)}, work.path());
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(wait_until(
      [&] {
        std::string after = browser_dom(work.path(), host_link[1]);
        return after.find(kMarker) == std::string::npos && after.find("no such preview") != std::string::npos;
      },
      30s, "the closed preview is gone from the browser's view"));
}

}  // namespace
}  // namespace boxcar::service_test

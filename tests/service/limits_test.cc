// The limits of an agent's jobs, end to end (`boxcar serve` and its in-process agent): a job's
// workspace past its size or inode limit, a step asking past a ceiling, the cap on completed
// jobs holding previews, and a huge workspace removed while the preview proxy keeps answering.
// Each attack beside a control job on the same server.
#include <gtest/gtest.h>

#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

// The job's step `name` as the API shows it.
json::object step_of(const json::object& job, const std::string& name) {
  for (const auto& s : job.at("steps").as_array()) {
    if (str(s.as_object(), "name") == name) return s.as_object();
  }
  ADD_FAILURE() << "no step " << name << " in " << json::serialize(job);
  return {};
}

std::string step(const std::string& name, const std::string& run, const std::string& extra = "") {
  return "[[step]]\nname = \"" + name + "\"\nrun = '''\n" + run + "\n'''\n" + extra;
}

TEST(AgentLimits, AWorkspacePastItsLimitsOrAStepPastACeilingFailsBesideAControl) {
  TempDir work;
  make_git_repo(work / "repo", "",
                {{"fill.toml", "version = 1\n" + step("fill", "dd if=/dev/zero of=/workspace/fill bs=1M count=64\nsleep 60")},
                 {"files.toml", "version = 1\n" + step("files", "mkdir /workspace/many && cd /workspace/many && seq 1 5000 | xargs touch\nsleep 60")},
                 {"greedy.toml", "version = 1\n" + step("greedy", "echo ran", "resources = { memory = \"1GiB\" }\n")},
                 {"control.toml", "version = 1\n" +
                                      step("control", "dd if=/dev/zero of=/workspace/some bs=1M count=2\n"
                                                      "mkdir /workspace/few && cd /workspace/few && seq 1 100 | xargs touch\necho fine",
                                           "resources = { memory = \"128MiB\" }\n")}});
  Server server(work.path(), {"--agent-token", "tok", "--max-workspace", "16MiB", "--max-workspace-inodes", "2000",
                              "--max-memory", "256MiB"});
  ASSERT_TRUE(server.ok());
  auto run = [&](const std::string& file) {
    long id = server.submit({{"repo", (work / "repo").string()}, {"file", file}});
    auto job = id > 0 ? server.wait_final(id) : std::nullopt;
    return job.value_or(json::object{});
  };
  json::object control = run("control.toml");
  EXPECT_EQ(str(control, "state"), "success") << json::serialize(control);

  json::object fill = run("fill.toml");
  EXPECT_EQ(str(fill, "state"), "failed") << json::serialize(fill);
  EXPECT_EQ(str(step_of(fill, "fill"), "state"), "failed");
  EXPECT_EQ(str(step_of(fill, "fill"), "reason"), "workspace over its 16.0 MiB limit");

  json::object files = run("files.toml");
  EXPECT_EQ(str(files, "state"), "failed") << json::serialize(files);
  EXPECT_EQ(str(step_of(files, "files"), "reason"),
            "workspace over its limit of 2000 files and directories");

  json::object greedy = run("greedy.toml");
  EXPECT_EQ(str(greedy, "state"), "error") << json::serialize(greedy);
  EXPECT_NE(str(greedy, "reason").find("greedy.toml:2:1: error: step \"greedy\": resources.memory = 1.0 GiB is over "
                                       "the ceiling of 256.0 MiB: ask for at most 256.0 MiB"),
            std::string::npos)
      << json::serialize(greedy);

  // The server still runs jobs after all that.
  EXPECT_EQ(str(run("control.toml"), "state"), "success");
}

std::string preview_pipeline(const std::string& extra_step) {
  return "version = 1\n" +
         step("web", "python3 -m http.server 8471 --bind 127.0.0.1",
              "preview_ttl = \"10m\"\n[[step.expose]]\nport = 8471\nname = \"web\"\n") +
         extra_step;
}

// The path-form preview URL of the job's only preview, once the server lists it open.
std::string open_preview_path(Server& server, long id) {
  std::string path;
  wait_until(
      [&] {
        auto r = server.api("GET", "/api/v1/jobs/" + std::to_string(id) + "/previews");
        if (r.status != 200) return false;
        auto list = json::parse(r.body).at("previews").as_array();
        if (list.empty() || str(list[0].as_object(), "state") != "open") return false;
        std::string url = str(list[0].as_object(), "path_url");
        path = url.substr(url.find("/preview/"));
        return true;
      },
      60s, "job " + std::to_string(id) + "'s preview is open");
  return path;
}

bool trash_holds_something(const fs::path& trash) {
  std::error_code ec;
  return fs::exists(trash, ec) && !fs::is_empty(trash, ec);
}

TEST(AgentLimits, TheOldestPreviewClosesAtTheCapAndItsHugeWorkspaceGoesWhileTheProxyAnswers) {
  TempDir work;
  // Job A keeps a preview open and leaves 20,000 files in its workspace.
  make_git_repo(work / "repo", "",
                {{"a.toml", preview_pipeline(step("many", "mkdir /workspace/many && cd /workspace/many && seq 1 20000 | xargs touch"))},
                 {"b.toml", preview_pipeline("")},
                 {"index.html", "served\n"}});
  int proxy = free_port();
  Server server(work.path(), {"--agent-token", "tok", "--max-previews", "1", "--preview-listen",
                              "127.0.0.1:" + std::to_string(proxy)});
  ASSERT_TRUE(server.ok());
  long a = server.submit({{"repo", (work / "repo").string()}, {"file", "a.toml"}});
  auto job_a = server.wait_final(a);
  ASSERT_TRUE(job_a);
  ASSERT_EQ(str(*job_a, "state"), "success") << server.logs(a);
  std::string preview_a = open_preview_path(server, a);
  ASSERT_EQ(http_request(proxy, "GET", preview_a + "index.html").status, 200);

  // Job B runs although A's preview is open (it holds no job slot); when B's own preview opens,
  // A's is the one past --max-previews 1: it closes, and A's workspace is removed.
  long b = server.submit({{"repo", (work / "repo").string()}, {"file", "b.toml"}});
  std::string preview_b = open_preview_path(server, b);
  ASSERT_FALSE(preview_b.empty());
  fs::path trash = server.data_dir() / "agent-0" / "trash";
  bool seen_removing = false, answered_while_removing = false;
  wait_until(
      [&] {
        bool before = trash_holds_something(trash);
        seen_removing = seen_removing || before;
        auto r = http_request(proxy, "GET", preview_b + "index.html", {}, "", 10s);
        EXPECT_EQ(r.status, 200) << r.error;
        answered_while_removing = answered_while_removing || (before && r.status == 200 && trash_holds_something(trash));
        return answered_while_removing || (seen_removing && !trash_holds_something(trash));
      },
      60s, "A's workspace is being removed");
  EXPECT_TRUE(answered_while_removing) << "the proxy never answered while A's 20,000 files were being removed";
  ASSERT_TRUE(wait_until([&] { return http_request(proxy, "GET", preview_a + "index.html").status == 404; }, 30s,
                         "A's preview closed at the cap"));
  EXPECT_EQ(http_request(proxy, "GET", preview_b + "index.html").status, 200) << "B's preview stays open";
  ASSERT_TRUE(wait_until([&] { return !trash_holds_something(trash); }, 60s, "A's workspace is gone"));
  EXPECT_NE(server.process().err().find("job " + std::to_string(a) + ": closing its previews"), std::string::npos)
      << server.process().describe();
}

}  // namespace
}  // namespace boxcar::service_test

// Artifacts through the service: a job's declared files reach the server from the agent and
// come back through `boxcar artifacts --download`, links inside the step's set kept as links,
// links out of it and FIFOs never leaking, a large file with bounded memory on both sides.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "base/sha256.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string sha_of(const std::string& data) { return sha256_hex(data); }

// VmHWM (peak resident set) of a live process, in KiB; -1 if unreadable.
long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::string submit(Server& server, const fs::path& repo, const fs::path& home) {
  auto r = server.cli({"submit", "--server", server.url(), repo.string()}, home);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return trim(r.out);
}

TEST(Artifacts, FilesGlobsLinksAndFifosThroughTheServer) {
  TempDir work;
  make_git_repo(work / "repo",
                "version = 1\n"
                "[[step]]\n"
                "name = \"make\"\n"
                "run = \"mkdir -p out/sub && printf 'report\\\\n' > out/report.txt && "
                "printf 'one' > out/sub/one.log && printf 'two' > out/two.log && "
                "ln -s /etc/passwd out/leak.txt && mkfifo out/pipe.log && "
                "ln -s report.txt out/latest.txt && ln -s latest.txt out/chain.log && "
                "ln -s ../../x out/up.log && ln -s ../.boxcar.toml out/uncollected.log && "
                "ln -s leak.txt out/via-leak.log && ln -s gone out/dangling.log && "
                "printf 'same' > dup1.bin && printf 'same' > dup2.bin\"\n"
                "artifacts = [\"out/report.txt\", \"out/**/*.log\", \"out/leak.txt\", \"out/latest.txt\", "
                "\"dup*.bin\"]\n");
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  std::string id = submit(server, work / "repo", work.path());
  ASSERT_FALSE(id.empty());
  auto job = server.wait_final(std::stol(id));
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(std::stol(id));

  auto list = server.cli({"artifacts", "--server", server.url(), id}, work.path());
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("out/report.txt"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("out/sub/one.log"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("pipe.log"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("leak.txt"), std::string::npos) << list.out;
  // Control: links inside the step's set are listed as links; attack: the others are refused,
  // each named in the step's log.
  EXPECT_NE(list.out.find("out/latest.txt -> report.txt"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("out/chain.log -> latest.txt"), std::string::npos) << list.out;
  std::string step_log = server.logs(std::stol(id), "make");
  for (const char* bad : {"leak.txt", "up.log", "uncollected.log", "via-leak.log", "dangling.log"}) {
    EXPECT_EQ(list.out.find(bad), std::string::npos) << bad << "\n" << list.out;
    EXPECT_NE(step_log.find("link \"out/" + std::string(bad) + "\""), std::string::npos) << bad << "\n" << step_log;
  }
  auto through_link = server.api("GET", "/api/v1/jobs/" + id + "/artifacts/out/chain.log");
  EXPECT_EQ(through_link.status, 200);
  EXPECT_EQ(through_link.body, "report\n");
  EXPECT_EQ(through_link.headers["x-boxcar-link-target"], "latest.txt");

  fs::path dest = work / "dl";
  auto dl = server.cli({"artifacts", "--server", server.url(), "--download", dest.string(), id},
                       work.path());
  ASSERT_EQ(dl.exit_code, 0) << dl.out << dl.err;
  EXPECT_EQ(dl.err.find('\r'), std::string::npos) << "a progress bar on a pipe";
  EXPECT_EQ(read_file(dest / "out/report.txt"), "report\n");
  EXPECT_EQ(read_file(dest / "out/sub/one.log"), "one");
  EXPECT_EQ(read_file(dest / "out/two.log"), "two");
  EXPECT_EQ(read_file(dest / "dup1.bin"), "same");
  EXPECT_EQ(read_file(dest / "dup2.bin"), "same");
  EXPECT_FALSE(fs::exists(fs::symlink_status(dest / "out/leak.txt")));
  ASSERT_TRUE(fs::is_symlink(dest / "out/latest.txt"));
  EXPECT_EQ(fs::read_symlink(dest / "out/latest.txt"), "report.txt");
  EXPECT_EQ(fs::read_symlink(dest / "out/chain.log"), "latest.txt");
  EXPECT_EQ(read_file(dest / "out/chain.log"), "report\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(dest / "out/up.log")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dest / "out/pipe.log")));
  // Nothing anywhere in the download holds /etc/passwd's content.
  std::string passwd = read_file("/etc/passwd");
  for (auto& e : fs::recursive_directory_iterator(dest)) {
    if (e.is_regular_file()) {
      EXPECT_NE(read_file(e.path()), passwd) << e.path();
    }
  }
  // The listing's hashes are the content's; identical content is one blob on the server.
  auto listed = server.api("GET", "/api/v1/jobs/" + id + "/artifacts");
  ASSERT_EQ(listed.status, 200);
  json::value parsed = json::parse(listed.body);
  for (const auto& v : parsed.at("artifacts").as_array()) {
    std::string path(v.at("path").as_string());
    EXPECT_EQ(std::string(v.at("sha256").as_string()), sha_of(read_file(dest / path))) << path;
  }
  size_t blobs = 0;
  for (auto& e : fs::recursive_directory_iterator(server.data_dir() / "artifacts" / "sha256")) {
    blobs += e.is_regular_file();
  }
  EXPECT_EQ(blobs, 4u);  // report, one, two, same
  auto traversal = server.api("GET", "/api/v1/jobs/" + id + "/artifacts/out/%2E%2E/%2E%2E/etc/passwd");
  EXPECT_EQ(traversal.status, 400);
}

// A job can declare its checkout's .git/config as an artifact: downloading into a repository
// must not write it there (git runs what core.fsmonitor or a hook names).
TEST(Artifacts, DownloadRefusesFilesInsideDotGit) {
  TempDir work;
  make_git_repo(work / "repo",
                "version = 1\n"
                "[[step]]\n"
                "name = \"make\"\n"
                "run = \"printf 'fine' > ok.txt\"\n"
                "artifacts = [\"ok.txt\", \".git/config\"]\n");
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  std::string id = submit(server, work / "repo", work.path());
  auto job = server.wait_final(std::stol(id));
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(std::stol(id));
  auto listed = server.cli({"artifacts", "--server", server.url(), id}, work.path());
  ASSERT_NE(listed.out.find(".git/config"), std::string::npos) << listed.out << listed.err;
  fs::path dest = work / "dl";
  fs::create_directories(dest / ".git");
  write_file(dest / ".git/config", "[core]\n");
  auto dl = server.cli({"artifacts", "--server", server.url(), "--download", dest.string(), id},
                       work.path());
  EXPECT_NE(dl.exit_code, 0) << dl.out << dl.err;
  EXPECT_NE(dl.err.find("refusing \".git/config\""), std::string::npos) << dl.err;
  EXPECT_EQ(read_file(dest / ".git/config"), "[core]\n");
  EXPECT_EQ(read_file(dest / "ok.txt"), "fine");
}

TEST(Artifacts, ALargeFileWithBoundedMemory) {
  constexpr int kMiB = 1024;
  TempDir work;
  make_git_repo(work / "repo",
                "version = 1\n"
                "[[step]]\n"
                "name = \"big\"\n"
                "run = \"head -c " + std::to_string(kMiB) + "M /dev/urandom > big.bin\"\n"
                "artifacts = [\"big.bin\"]\n");
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  std::string id = submit(server, work / "repo", work.path());
  auto job = server.wait_final(std::stol(id), std::chrono::seconds(240));
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(std::stol(id));
  fs::path dest = work / "dl";
  auto dl = server.cli({"artifacts", "--server", server.url(), "--download", dest.string(), id},
                       work.path());
  ASSERT_EQ(dl.exit_code, 0) << dl.out << dl.err;
  EXPECT_EQ(fs::file_size(dest / "big.bin"), uint64_t{kMiB} << 20);
  auto listed = server.api("GET", "/api/v1/jobs/" + id + "/artifacts");
  auto items = json::parse(listed.body).at("artifacts").as_array();
  ASSERT_EQ(items.size(), 1u);
  auto digest = sha256_file(dest / "big.bin");
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, std::string(items[0].at("sha256").as_string()));
  // The server and its in-process agent are one process: it hashed, sent, received, stored
  // and served the file without holding it in memory.
  long peak = peak_rss_kib(server.process().pid());
  ASSERT_GT(peak, 0);
  RecordProperty("serve_peak_rss_kib", static_cast<int>(peak));
  std::fprintf(stderr, "boxcar serve peak RSS after a %d MiB artifact: %ld KiB\n", kMiB, peak);
  EXPECT_LT(peak, 100 * 1024) << "peak RSS of boxcar serve: " << peak << " KiB";
}

}  // namespace
}  // namespace boxcar::service_test

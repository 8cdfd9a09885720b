// RemoteObserver's artifact uploads against the fake server on real loopback HTTP, with the
// collected copy changed between the hash and the send (the outbox may send it much later):
// what is sent is always the bytes that were hashed, and nothing blocks or retries forever.
#include "agent/daemon/remote_observer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "agent/artifacts.h"
#include "testing/fake_server.h"
#include "http/http_client.h"
#include "agent/daemon/job_outbox.h"
#include "base/sha256.h"

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;
using testing::FakeServer;

constexpr int64_t kJob = 7;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RemoteObserverArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-observer-XXXXXX";
    root = ::mkdtemp(tmpl);
    fs::create_directories(root / "ws");
    fs::create_directories(root / "artifacts");
    std::ofstream(root / "secret") << "host secret\n";
    observer = std::make_unique<RemoteObserver>(
        io, *outbox,
        RemoteObserverOptions{Millis(20), 256 * 1024, root / "artifacts", {}, {}});
  }
  void TearDown() override {
    observer.reset();
    outbox.reset();
    client.reset();
    fs::remove_all(root);
  }

  void write_ws(const std::string& rel, const std::string& content) {
    fs::create_directories((root / "ws" / rel).parent_path());
    std::ofstream(root / "ws" / rel, std::ios::binary) << content;
  }

  // What the scheduler does after a step: collect its declared artifacts, then report each.
  void collect_and_report(const std::string& step, const std::vector<std::string>& globs) {
    uint64_t used = 0;
    auto r = collect_artifacts(root / "ws", globs, root / "artifacts", ArtifactLimits{}, used);
    ASSERT_TRUE(r.ok());
    for (const auto& f : r->files) observer->artifact(0, step, f.path, f.bytes);
  }

  // Runs the io_context until every queued report was sent or dropped. No timer bounds it: a
  // request that blocks the io thread hangs the test.
  void drain() {
    observer->flush_logs();
    bool drained = false;
    outbox->when_drained([&] { drained = true; });
    io.restart();
    io.run();
    EXPECT_TRUE(drained);
  }

  std::string outbox_log() const {
    std::string out;
    for (const auto& l : outbox_lines) out += l + "\n";
    return out;
  }

  fs::path root;
  FakeServer server;
  FakeServer::Grant grant = server.grant(kJob);
  boost::asio::io_context io;
  std::vector<std::string> outbox_lines;
  std::unique_ptr<HttpClient> client =
      std::make_unique<HttpClient>(io, parse_server_url(server.url()).value(), grant.credential);
  std::unique_ptr<JobOutbox> outbox = std::make_unique<JobOutbox>(
      io, *client, kJob, grant.lease,
      JobOutboxHandlers{nullptr, [this](const std::string& l) { outbox_lines.push_back(l); }});
  std::unique_ptr<RemoteObserver> observer;
};

const std::string kOriginal = "the step's real output\n";

TEST_F(RemoteObserverArtifactsTest, CopyReplacedBySymlinkBeforeTheUploadSendsTheOriginal) {
  write_ws("out/report.txt", kOriginal);
  collect_and_report("build", {"out/report.txt"});
  // A later step declares the same path as a symlink to a host file: collection refuses it
  // and keeps the copy.
  fs::remove(root / "ws/out/report.txt");
  fs::create_symlink(root / "secret", root / "ws/out/report.txt");
  collect_and_report("later", {"out/report.txt"});
  ASSERT_FALSE(fs::is_symlink(root / "artifacts/out/report.txt"));
  // Were the copy replaced by such a link anyway before the outbox got to the first upload
  // (nothing has run on the io yet), the link is not sent and the original is.
  fs::remove(root / "artifacts/out/report.txt");
  fs::create_symlink(root / "secret", root / "artifacts/out/report.txt");
  observer->artifact(0, "later", "out/report.txt", 0);
  drain();

  auto job = server.job(kJob);
  ASSERT_EQ(job.stored_artifacts.size(), 1u) << outbox_log();
  EXPECT_EQ(job.artifacts["out/report.txt"].data, kOriginal);
  EXPECT_EQ(job.artifacts["out/report.txt"].sha256, sha256_hex(kOriginal));
  EXPECT_EQ(job.artifacts["out/report.txt"].step, "build");
  EXPECT_EQ(job.sha256_mismatches, 0);
  EXPECT_NE(job.log("(job)").find("later: artifact out/report.txt: a symlink pointing out of the artifacts, not uploaded"),
            std::string::npos)
      << job.log("(job)");
}

// Control: a link inside the step's set goes to the server as a link, its target text only.
TEST_F(RemoteObserverArtifactsTest, LinkInsideTheSetIsSentAsALink) {
  write_ws("lib/libx.so.1", "elf");
  fs::create_symlink("libx.so.1", root / "ws/lib/libx.so");
  collect_and_report("build", {"lib/*"});
  drain();

  auto job = server.job(kJob);
  ASSERT_EQ(job.stored_artifacts.size(), 2u) << outbox_log();
  EXPECT_EQ(job.artifacts["lib/libx.so.1"].data, "elf");
  EXPECT_EQ(job.artifacts["lib/libx.so"].link, "libx.so.1");
  EXPECT_EQ(job.artifacts["lib/libx.so"].data, "");
  EXPECT_NE(job.log("(job)").find("build: artifact lib/libx.so -> libx.so.1 (a link)"), std::string::npos)
      << job.log("(job)");
}

TEST_F(RemoteObserverArtifactsTest, CopyReplacedByFifoBeforeTheUploadSendsTheOriginal) {
  write_ws("out/report.txt", kOriginal);
  collect_and_report("build", {"out/report.txt"});
  fs::remove(root / "artifacts/out/report.txt");
  ASSERT_EQ(::mkfifo((root / "artifacts/out/report.txt").c_str(), 0644), 0);
  observer->artifact(0, "later", "out/report.txt", 0);  // refused at once, not opened blocking
  drain();

  auto job = server.job(kJob);
  ASSERT_EQ(job.stored_artifacts.size(), 1u) << outbox_log();
  EXPECT_EQ(job.artifacts["out/report.txt"].data, kOriginal);
  EXPECT_EQ(job.artifacts["out/report.txt"].sha256, sha256_hex(kOriginal));
  EXPECT_EQ(job.sha256_mismatches, 0);
  EXPECT_NE(job.log("(job)").find("later: artifact out/report.txt: not a regular file, not uploaded"),
            std::string::npos)
      << job.log("(job)");
}

TEST_F(RemoteObserverArtifactsTest, CopyReplacedByLinkToHostFifoOrRemovedStillSendsTheOriginal) {
  ASSERT_EQ(::mkfifo((root / "host.fifo").c_str(), 0644), 0);
  write_ws("a.txt", "first\n");
  write_ws("b.txt", "second\n");
  collect_and_report("build", {"a.txt", "b.txt"});
  fs::remove(root / "artifacts/a.txt");
  fs::create_symlink(root / "host.fifo", root / "artifacts/a.txt");
  fs::remove(root / "artifacts/b.txt");  // a dangling name: no ENOENT retried forever
  drain();

  auto job = server.job(kJob);
  EXPECT_EQ(job.artifacts["a.txt"].data, "first\n") << outbox_log();
  EXPECT_EQ(job.artifacts["b.txt"].data, "second\n") << outbox_log();
  EXPECT_EQ(job.sha256_mismatches, 0);
}

TEST_F(RemoteObserverArtifactsTest, SamePathCollectedAgainSendsEachVersionWithItsOwnHash) {
  write_ws("out/app", "version one\n");
  collect_and_report("one", {"out/app"});
  write_ws("out/app", "version two, longer\n");
  collect_and_report("two", {"out/app"});
  drain();

  auto job = server.job(kJob);
  ASSERT_EQ(job.stored_artifacts.size(), 2u) << outbox_log();
  EXPECT_EQ(job.stored_artifacts[0].second.data, "version one\n");
  EXPECT_EQ(job.stored_artifacts[0].second.sha256, sha256_hex("version one\n"));
  EXPECT_EQ(job.stored_artifacts[1].second.data, "version two, longer\n");
  EXPECT_EQ(job.stored_artifacts[1].second.sha256, sha256_hex("version two, longer\n"));
  EXPECT_EQ(job.sha256_mismatches, 0);
  EXPECT_EQ(read_all(root / "artifacts/out/app"), "version two, longer\n");
}

TEST_F(RemoteObserverArtifactsTest, RetriedUploadResendsFromTheFirstByte) {
  server.fail_artifact_uploads(2);
  std::string big(300'000, 'x');
  for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  write_ws("big.bin", big);
  collect_and_report("build", {"big.bin"});
  fs::remove(root / "artifacts/big.bin");
  drain();

  auto job = server.job(kJob);
  EXPECT_EQ(job.artifact_uploads, 3);
  ASSERT_EQ(job.stored_artifacts.size(), 1u) << outbox_log();
  EXPECT_EQ(job.artifacts["big.bin"].data, big);
  EXPECT_EQ(job.sha256_mismatches, 0);
}

// The outbox alone: a file that cannot be read as announced is dropped with a log line, and
// the reports after it still go out.
TEST_F(RemoteObserverArtifactsTest, UnreadableUploadIsDroppedNotRetried) {
  std::ofstream(root / "short.txt") << "abc";
  auto short_file = std::make_shared<const unique_fd>(::open((root / "short.txt").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(*short_file);
  outbox->post_file("artifacts?path=short.txt&sha256=" + sha256_hex("abc"), short_file, 1000);
  auto dir = std::make_shared<const unique_fd>(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(*dir);
  outbox->post_file("artifacts?path=dir&sha256=" + sha256_hex(""), dir, 10);
  outbox->post_file("artifacts?path=ok.txt&sha256=" + sha256_hex("abc"), short_file, 3);
  drain();

  auto job = server.job(kJob);
  ASSERT_EQ(job.stored_artifacts.size(), 1u) << outbox_log();
  EXPECT_EQ(job.stored_artifacts[0].first, "ok.txt");
  EXPECT_EQ(job.stored_artifacts[0].second.data, "abc");
  ASSERT_EQ(outbox_lines.size(), 2u) << outbox_log();
  EXPECT_NE(outbox_lines[0].find("path=short.txt"), std::string::npos) << outbox_lines[0];
  EXPECT_NE(outbox_lines[0].find("dropped: the file ended after 3 of 1000 bytes"), std::string::npos)
      << outbox_lines[0];
  EXPECT_NE(outbox_lines[1].find("dropped: cannot read the file: Is a directory"), std::string::npos)
      << outbox_lines[1];
}

// The same fixture: the fake server on loopback, the real client, outbox and observer.
using RemoteObserverLogsTest = RemoteObserverArtifactsTest;

TEST_F(RemoteObserverLogsTest, OutputThatIsNotUtf8TravelsAsBase64AndIsStoredExactly) {
  const std::string binary("raw \xff\xfe\x00\x80 bytes\xc3", 15);
  observer->step_started(0, "bin", 1);
  observer->step_line(0, "bin", {}, binary, false);
  observer->step_started(1, "text", 1);
  observer->step_line(1, "text", {}, "caf\xc3\xa9", false);
  drain();
  auto job = server.job(kJob);
  EXPECT_EQ(job.log("bin"), binary + "\n") << outbox_log();
  EXPECT_EQ(job.log("text"), "caf\xc3\xa9\n") << outbox_log();
  EXPECT_EQ(server.refused_log_uploads(), 0);
  EXPECT_TRUE(outbox_lines.empty()) << outbox_log();
}

TEST_F(RemoteObserverLogsTest, ARefusedBatchIsSentChunkByChunkAndTheBadChunkBecomesANote) {
  server.refuse_logs_containing("POISON");
  // Four chunks in one upload: a, b, a again, c (the observer batches until its next flush).
  observer->step_line(0, "a", {}, "a-first", false);
  observer->step_line(1, "b", {}, "POISON line", false);
  observer->step_line(0, "a", {}, "a-second", false);
  observer->step_line(2, "c", {}, "c-only", false);
  drain();

  auto job = server.job(kJob);
  // Attack: the batch with the bad chunk was refused. Control: every other line is stored.
  EXPECT_EQ(job.log("a"), "a-first\na-second\n") << outbox_log();
  EXPECT_EQ(job.log("c"), "c-only\n") << outbox_log();
  // The bad chunk's place in b's log says what was lost and why.
  std::string b = job.log("b");
  EXPECT_EQ(b.find("POISON"), std::string::npos) << b;
  EXPECT_NE(b.find("boxcar: 12 B of this step's output were lost: the server refused them"),
            std::string::npos)
      << b;
  EXPECT_NE(b.find("this chunk is not acceptable"), std::string::npos) << b;
  EXPECT_EQ(server.refused_log_uploads(), 2) << outbox_log();  // the batch, then the chunk
  EXPECT_NE(outbox_log().find("logs refused, sent again chunk by chunk"), std::string::npos)
      << outbox_log();
}

}  // namespace
}  // namespace boxcar::agent

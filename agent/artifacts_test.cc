#include "agent/artifacts.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>

#include <atomic>
#include <fstream>
#include <thread>

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;

class ArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-artifacts-XXXXXX";
    root_ = mkdtemp(tmpl);
    ws_ = root_ / "ws";
    dest_ = root_ / "dest";
    fs::create_directories(ws_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& rel, const std::string& content) {
    fs::create_directories((ws_ / rel).parent_path());
    std::ofstream(ws_ / rel) << content;
  }

  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  CollectResult collect(const std::vector<std::string>& globs, ArtifactLimits limits = {}) {
    uint64_t used = 0;
    auto r = collect_artifacts(ws_, globs, dest_, limits, used);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r.value() : CollectResult{};
  }

  fs::path root_, ws_, dest_;
};

TEST_F(ArtifactsTest, LiteralPathsAndGlobs) {
  write("build/app", "binary");
  write("reports/a/x.xml", "<a/>");
  write("reports/b/c/y.xml", "<b/>");
  write("reports/skip.txt", "no");
  auto r = collect({"build/app", "reports/**/*.xml"});
  EXPECT_EQ(r.files.size(), 3u);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_TRUE(fs::is_regular_file(dest_ / "build/app"));
  EXPECT_TRUE(fs::is_regular_file(dest_ / "reports/b/c/y.xml"));
  EXPECT_FALSE(fs::exists(dest_ / "reports/skip.txt"));
}

TEST_F(ArtifactsTest, DirectoryMatchTakesEverythingBelow) {
  write("dist/a.js", "a");
  write("dist/sub/b.js", "b");
  auto r = collect({"dist"});
  EXPECT_EQ(r.files.size(), 2u);
  EXPECT_TRUE(fs::is_regular_file(dest_ / "dist/sub/b.js"));
}

TEST_F(ArtifactsTest, LinksOutOfTheSetAreRefusedNeverFollowed) {
  fs::create_directories(ws_ / "out");
  fs::create_symlink("/etc/passwd", ws_ / "out/passwd");
  fs::create_symlink("/etc", ws_ / "linkdir");
  auto r = collect({"out/passwd", "linkdir/*", "linkdir/passwd"});
  EXPECT_FALSE(fs::exists(fs::symlink_status(dest_ / "out/passwd")));
  ASSERT_EQ(r.refused.size(), 1u);
  EXPECT_NE(r.refused[0].find("\"out/passwd\" -> \"/etc/passwd\""), std::string::npos) << r.refused[0];
  // Nothing of /etc was copied through the linked directory.
  EXPECT_FALSE(fs::exists(dest_ / "linkdir/passwd"));
  EXPECT_FALSE(fs::exists(dest_ / "linkdir/hostname"));
}

// Attack: each way out of the set (absolute, "..", dangling, a file not collected, a chain
// through a link that leaves); control: links to collected files, a chain and a linked
// directory are kept as links, with their target text.
TEST_F(ArtifactsTest, LinksInsideTheSetAreKeptOthersRefused) {
  write("lib/libx.so.1", "elf");
  write("lib/other.a", "not collected");
  write("secret.txt", "s");
  fs::create_symlink("libx.so.1", ws_ / "lib/libx.so");
  fs::create_symlink("libx.so", ws_ / "lib/libx.so.0");
  fs::create_symlink("lib", ws_ / "lib64");
  fs::create_symlink("../../x", ws_ / "lib/up");
  fs::create_symlink("gone", ws_ / "lib/dangling");
  fs::create_symlink("other.a", ws_ / "lib/uncollected");
  fs::create_symlink("../secret.txt", ws_ / "lib/sneaky");
  fs::create_symlink("sneaky", ws_ / "lib/chain");
  fs::create_symlink("/etc/passwd", ws_ / "lib/abs");
  fs::create_symlink("abs", ws_ / "lib/via-abs");
  auto r = collect({"lib/*.so*", "lib64", "lib/up", "lib/dangling", "lib/uncollected", "lib/sneaky",
                    "lib/chain", "lib/abs", "lib/via-abs"});
  EXPECT_EQ(fs::read_symlink(dest_ / "lib/libx.so"), "libx.so.1");
  EXPECT_EQ(fs::read_symlink(dest_ / "lib/libx.so.0"), "libx.so");
  EXPECT_EQ(fs::read_symlink(dest_ / "lib64"), "lib");
  EXPECT_EQ(read(dest_ / "lib64/libx.so.0"), "elf");
  for (const char* bad : {"up", "dangling", "uncollected", "sneaky", "chain", "abs", "via-abs"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(dest_ / "lib" / bad))) << bad;
    bool named = false;
    for (const auto& line : r.refused) named = named || line.find("\"lib/" + std::string(bad) + "\"") != std::string::npos;
    EXPECT_TRUE(named) << bad;
  }
  EXPECT_EQ(r.refused.size(), 7u);
  size_t links = 0;
  for (const auto& f : r.files) links += f.symlink;
  EXPECT_EQ(links, 3u);
}

TEST_F(ArtifactsTest, DotDotNeverEscapes) {
  write("in.txt", "x");
  auto r = collect({"../outside", "sub/../../etc/passwd"});
  EXPECT_TRUE(r.files.empty());
  EXPECT_FALSE(fs::exists(dest_ / "etc"));
}

TEST_F(ArtifactsTest, FifosAreSkippedWithAWarning) {
  fs::create_directories(ws_ / "out");
  ASSERT_EQ(mkfifo((ws_ / "out/pipe").c_str(), 0644), 0);
  write("out/ok", "ok");
  auto r = collect({"out/*"});
  EXPECT_EQ(r.files.size(), 1u);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("FIFO"), std::string::npos);
}

TEST_F(ArtifactsTest, LiteralFifoIsSkippedWithoutBlocking) {
  ASSERT_EQ(mkfifo((ws_ / "pipe").c_str(), 0644), 0);
  auto r = collect({"pipe"});
  EXPECT_TRUE(r.files.empty());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("FIFO"), std::string::npos) << r.warnings[0];
  EXPECT_FALSE(fs::exists(dest_ / "pipe"));
}

// A step swaps the declared file with a FIFO (RENAME_EXCHANGE) while it is being collected:
// whichever it finds, collecting returns (no open waits for a FIFO's writer) and never copies
// anything but the regular file. Whether a run hits the window between the check and the open
// is up to the scheduler; a hang here is the bug.
TEST_F(ArtifactsTest, FileSwappedWithAFifoDuringCollectionNeverBlocks) {
  write("out/f", "regular");
  ASSERT_EQ(mkfifo((ws_ / "pipe").c_str(), 0644), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> swaps{0};
  std::thread swapper([&] {
    while (!stop) {
      if (renameat2(AT_FDCWD, (ws_ / "out/f").c_str(), AT_FDCWD, (ws_ / "pipe").c_str(),
                    RENAME_EXCHANGE) == 0) {
        ++swaps;
      }
    }
  });
  int copied = 0;
  for (int i = 0; i < 500; ++i) {
    fs::remove_all(dest_);
    auto r = collect({"out/f"});
    copied += static_cast<int>(r.files.size());
    if (fs::exists(fs::symlink_status(dest_ / "out/f"))) {
      EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(dest_ / "out/f")));
    }
  }
  stop = true;
  swapper.join();
  EXPECT_GT(swaps.load(), 0);
  ::testing::Test::RecordProperty("copied", copied);
}

TEST_F(ArtifactsTest, LimitsSkipWithAClearWarning) {
  write("big", std::string(5000, 'x'));
  write("small1", std::string(600, 'x'));
  write("small2", std::string(600, 'x'));
  auto r = collect({"big", "small1", "small2"}, ArtifactLimits{4096, 1000});
  EXPECT_EQ(r.files.size(), 1u);
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_NE(r.warnings[0].find("per-file limit"), std::string::npos) << r.warnings[0];
  EXPECT_NE(r.warnings[1].find("over"), std::string::npos) << r.warnings[1];
}

TEST_F(ArtifactsTest, NoMatchWarns) {
  auto r = collect({"missing/*.txt"});
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0], "no file matches \"missing/*.txt\"");
}

}  // namespace
}  // namespace boxcar::agent

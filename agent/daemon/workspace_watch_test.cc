#include "agent/daemon/workspace_watch.h"
#include "testing/scratch_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Scratch : testing::ScratchDir {
  Scratch() : ScratchDir("boxcar-watch-test") {}
};

void write_bytes(const fs::path& file, size_t n) {
  std::ofstream out(file, std::ios::binary);
  std::string chunk(1 << 16, 'x');
  for (size_t done = 0; done < n; done += chunk.size()) out.write(chunk.data(), std::min(chunk.size(), n - done));
}

TEST(MeasureWorkspace, CountsEntriesAndBlocksAHardLinkOnce) {
  Scratch s;
  fs::create_directories(s.dir / "a/b");
  write_bytes(s.dir / "a/b/data", 1 << 20);
  fs::create_hard_link(s.dir / "a/b/data", s.dir / "a/again");
  fs::create_symlink("/usr", s.dir / "a/usr-link");  // never followed
  auto usage = measure_workspace(s.dir, WorkspaceLimits{0, 0, {}});
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->inodes, 5u);  // a, a/b, a/b/data, a/again, a/usr-link
  EXPECT_GE(usage->bytes, 1u << 20);
  EXPECT_LT(usage->bytes, 2u << 20) << "the hard link was counted twice";
  auto none = measure_workspace(s.dir / "missing", WorkspaceLimits{});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->inodes, 0u);
}

TEST(MeasureWorkspace, SaysWhichLimitIsPassed) {
  WorkspaceLimits limits{10ull << 30, 1000, {}};
  EXPECT_EQ(over_limit({1 << 20, 10}, limits), "");
  EXPECT_EQ(over_limit({(10ull << 30) + 1, 10}, limits), "workspace over its 10.0 GiB limit");
  EXPECT_EQ(over_limit({1, 1001}, limits),
            "workspace over its limit of 1000 files and directories");
  EXPECT_EQ(over_limit({~0ull, ~0ull}, WorkspaceLimits{0, 0, {}}), "") << "0 is no limit";
}

// Runs `io` until `done` or a generous deadline. The watch posts from its own thread: the io
// context may run out of work in between, which stops it until restarted.
void run_until(boost::asio::io_context& io, const bool& done) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    if (io.run_one_for(50ms) == 0) std::this_thread::sleep_for(5ms);
  }
}

TEST(WorkspaceWatch, AWorkspacePastItsLimitIsReportedOnceAndOneUnderItIsNot) {
  Scratch s;
  boost::asio::io_context io;
  WorkspaceWatch watch(io, WorkspaceLimits{1 << 20, 0, Millis(20)});
  fs::create_directories(s.dir / "big");
  fs::create_directories(s.dir / "small");
  std::string big_reason;
  int big_calls = 0, small_calls = 0;
  bool done = false;
  auto big = watch.watch(s.dir / "big", [&](const std::string& why) {
    big_reason = why;
    ++big_calls;
    done = true;
  });
  auto small = watch.watch(s.dir / "small", [&](const std::string&) { ++small_calls; });
  write_bytes(s.dir / "small/file", 64 << 10);  // the control: well under 1 MiB
  write_bytes(s.dir / "big/file", 2 << 20);
  run_until(io, done);
  EXPECT_EQ(big_reason, "workspace over its 1.0 MiB limit");
  // A few more rounds: nothing is reported twice, and the small one never.
  bool later = false;
  boost::asio::steady_timer timer(io, 200ms);
  timer.async_wait([&](auto) { later = true; });
  run_until(io, later);
  EXPECT_EQ(big_calls, 1);
  EXPECT_EQ(small_calls, 0);
}

TEST(WorkspaceWatch, NothingIsReportedOnceTheHandleIsGone) {
  Scratch s;
  boost::asio::io_context io;
  WorkspaceWatch watch(io, WorkspaceLimits{0, 10, Millis(20)});
  int calls = 0;
  auto handle = watch.watch(s.dir, [&](const std::string&) { ++calls; });
  handle.reset();
  for (int i = 0; i < 50; ++i) std::ofstream(s.dir / std::to_string(i)) << i;
  bool later = false;
  boost::asio::steady_timer timer(io, 300ms);
  timer.async_wait([&](auto) { later = true; });
  run_until(io, later);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace boxcar::agent

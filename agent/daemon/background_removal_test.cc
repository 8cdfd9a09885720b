#include "agent/daemon/background_removal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "agent/daemon/workspace_watch.h"
#include "testing/scratch_dir.h"

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Scratch : testing::ScratchDir {
  Scratch() : ScratchDir("boxcar-removal-test") {}
};

// `levels` nested directories of 200-character names, made one below the other with
// mkdirat/openat (no path is ever spelled out), so the tree's paths pass PATH_MAX (4096) after
// 21 levels; a file at the bottom.
void make_deep(const fs::path& root, int levels) {
  const std::string name(200, 'd');
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (int i = 0; i < levels; ++i) {
    ASSERT_EQ(::mkdirat(fd, name.c_str(), 0755), 0);
    int next = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(fd);
    fd = next;
  }
  int f = ::openat(fd, "bottom", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_EQ(::write(f, "x", 1), 1);
  ::close(f);
  ::close(fd);
}

void make_files(const fs::path& dir, int count) {
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    fs::path sub = dir / std::to_string(i / 1000);
    if (i % 1000 == 0) fs::create_directory(sub);
    std::ofstream(sub / std::to_string(i)) << i;
  }
}

TEST(RemoveTree, RemovesATreeDeeperThanPathMaxAndFollowsNoLink) {
  Scratch s;
  fs::path tree = s.dir / "tree";
  fs::create_directories(tree / "a");
  make_deep(tree / "a", 40);  // 8000 bytes of path below "a": past PATH_MAX
  fs::path outside = s.dir / "outside";
  fs::create_directories(outside);
  std::ofstream(outside / "keep") << "keep";
  fs::create_directory_symlink(outside, tree / "link-to-outside");
  fs::create_symlink(outside / "keep", tree / "link-to-file");
  std::atomic<bool> stop{false};
  ASSERT_TRUE(remove_tree(tree, stop));
  EXPECT_FALSE(fs::exists(tree));
  EXPECT_TRUE(fs::exists(outside / "keep")) << "a link was followed out of the tree";
}

TEST(RemoveTree, MeasuringSeesTheSameDeepTree) {
  Scratch s;
  make_deep(s.dir, 40);
  auto usage = measure_workspace(s.dir, WorkspaceLimits{0, 0, {}});
  ASSERT_TRUE(usage.ok()) << usage.error().message;
  EXPECT_EQ(usage->inodes, 41u);  // 40 directories and the file at the bottom
}

TEST(BackgroundRemoval, FreesThePathAtOnceAndRemovesTheTreeOnItsOwnThread) {
  Scratch s;
  fs::path ws = s.dir / "workspaces" / "7-1";
  make_files(ws, 5'000);
  BackgroundRemoval removal(s.dir / "trash");
  removal.remove(ws);
  // The path is free for the next job before its files are gone.
  EXPECT_FALSE(fs::exists(ws));
  EXPECT_TRUE(removal.busy());
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (removal.busy() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(removal.busy());
  EXPECT_TRUE(fs::is_empty(s.dir / "trash"));
}

TEST(BackgroundRemoval, WhatAStoppedAgentLeftInTheTrashIsRemovedAtTheNextStart) {
  Scratch s;
  make_files(s.dir / "trash" / "123-1-5-1", 100);
  std::ofstream(s.dir / "trash" / "stray-file") << "x";
  BackgroundRemoval removal(s.dir / "trash");
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (removal.busy() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(fs::is_empty(s.dir / "trash"));
}

}  // namespace
}  // namespace boxcar::agent

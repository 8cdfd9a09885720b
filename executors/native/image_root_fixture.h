// The fixture of the native executor's image-root tests (image_root_test.cc,
// image_write_limit_test.cc): layers built by hand as the layer store writes them (busybox-static
// and its links, a whiteout (char 0/0), an opaque directory (trusted.overlay.opaque=y), files
// owned by id_base + N on the host's disk) and a native executor to start sandboxes from them.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "executors/native/loop_fs.h"
#include "executors/native/native_executor.h"
#include "executors/native/uts.h"
#include "testing/sandbox_run.h"

namespace boxcar::executors::image_root_testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uid_t kIdBase = 100000;  // NativeOptions' default
constexpr const char* kApplets[] = {"sh",   "ls",    "cat",  "id",    "echo",  "stat", "touch", "mkdir",
                                    "env",  "rm",    "grep", "sleep", "mount", "unshare", "readlink",
                                    "head", "hostname", "true", "wc"};

using boxcar::testing::Ran;

inline void write_file(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << content;
}

// What the store does: every file of a layer belongs to the sandboxes' id range.
inline void chown_tree(const fs::path& dir, uid_t owner) {
  ::lchown(dir.c_str(), owner, owner);
  for (const auto& e : fs::recursive_directory_iterator(dir)) ::lchown(e.path().c_str(), owner, owner);
}

// A base layer: busybox and its applets in /bin, /etc/passwd and /etc/group, an /usr of its own.
inline void make_busybox_layer(const fs::path& dir) {
  fs::create_directories(dir / "bin");
  fs::copy_file("/bin/busybox", dir / "bin/busybox");
  for (const char* applet : kApplets) fs::create_symlink("busybox", dir / "bin" / applet);
  write_file(dir / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
  write_file(dir / "etc/group", "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
  write_file(dir / "usr/marker-image", "image\n");
}

inline bool gone_within(const fs::path& path, boost::asio::io_context& io, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (fs::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(20ms);
  }
  return true;
}

class ImageRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = native_available(); !s) GTEST_SKIP() << s.error().message;
    char ws[] = "/tmp/boxcar-image-ws-XXXXXX";
    workspace_ = ::mkdtemp(ws);
    char layers[] = "/tmp/boxcar-image-layers-XXXXXX";
    layers_ = ::mkdtemp(layers);
    ::chmod(layers_.c_str(), 0755);
    base_ = layers_ / "base";
    top_ = layers_ / "top";
    make_busybox_layer(base_);
    write_file(base_ / "etc/removed", "whited out above\n");
    write_file(base_ / "opt/data/old", "hidden by the opaque directory above\n");
    fs::create_directories(base_ / "home/app");
    chown_tree(base_, kIdBase);
    chown_tree(base_ / "home/app", kIdBase + 1000);
    // The top layer: a whiteout, an opaque directory, a setuid-root (inside) probe.
    fs::create_directories(top_ / "etc");
    ASSERT_EQ(::mknod((top_ / "etc/removed").c_str(), S_IFCHR | 0, ::makedev(0, 0)), 0);
    write_file(top_ / "opt/data/new", "new\n");
    ASSERT_EQ(::setxattr((top_ / "opt/data").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
    fs::create_directories(top_ / "bin");
    fs::copy_file(PRINT_IDS_PROBE, top_ / "bin/suid-ids");
    chown_tree(top_, kIdBase);
    ::chmod((top_ / "bin/suid-ids").c_str(), 04755);
    executor_ = make_native_executor(io_, options());
    auto job = executor_->prepare(JobSpec{"image-test", workspace_});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(*job);
  }

  void TearDown() override {
    if (job_) job_->destroy();
    io_.restart();
    io_.run_for(50ms);
    if (!workspace_.empty()) fs::remove_all(workspace_);
    if (!layers_.empty()) fs::remove_all(layers_);
  }

  virtual NativeOptions options() { return {}; }

  SandboxSpec image_spec(std::vector<fs::path> layers = {}) {
    SandboxSpec spec;
    spec.name = "image-step";
    spec.image = "test/busybox:1";
    spec.layers = layers.empty() ? std::vector<fs::path>{base_, top_} : std::move(layers);
    return spec;
  }

  std::unique_ptr<Sandbox> start(const SandboxSpec& spec) {
    auto s = job_->start(spec);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  Ran run(Sandbox& sandbox, const std::string& script, const std::string& user = "") {
    return boxcar::testing::run_in(io_, sandbox, ExecRequest{{"sh", "-c", script}, {"PATH=/bin:/usr/bin"}, ".", user});
  }

  // The upper directory holding `file` (written by a step), found from the host.
  fs::path upper_holding(const std::string& file) {
    for (const auto& inst : fs::directory_iterator("/var/lib/boxcar/uppers")) {
      if (!inst.is_directory()) continue;
      for (const auto& sb : fs::directory_iterator(inst.path())) {
        if (fs::exists(sb.path() / "upper" / file)) return sb.path();
      }
    }
    return {};
  }

  boost::asio::io_context io_;
  fs::path workspace_, layers_, base_, top_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Job> job_;
};

}  // namespace boxcar::executors::image_root_testing

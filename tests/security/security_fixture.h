// The sandbox security suite's shared fixture: a job of the executor under test (the suite runs
// once per isolated executor: native, and oci on runc), a sandbox per probe, and host-side
// controls (running the same probe as the test process, reading another process's memory and
// status from /proc).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "executors/native/native_executor.h"
#include "executors/oci/oci_executor.h"
#include "testing/sandbox_run.h"

namespace boxcar::executors {

namespace fs = std::filesystem;

// A probe's output and outcome: in a sandbox, or on the host (on_host: its exit status as the
// outcome).
using boxcar::testing::Ran;

inline const std::vector<std::string> kEnv = {"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/tmp"};

// Runs `script` with bash on the host, as the test process (root), for controls: its output
// (stdout and stderr together) and its exit status as the outcome.
Ran on_host(const std::string& script);

// The pids whose argv[0] starts with `marker`.
std::vector<pid_t> pids_with(const std::string& marker);

// The value of `key:` in /proc/<pid>/status, or "".
std::string status_field(pid_t pid, const std::string& key);

// Every readable mapping of `pid`'s memory (read from the host as root, through /proc/<pid>/mem)
// and its cmdline and environ, searched for `needle`.
bool memory_holds(pid_t pid, const std::string& needle);

// The parameter names the executor: "native" or "oci".
class SecurityTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool oci() const { return GetParam() == "oci"; }

  std::unique_ptr<Executor> make_executor(bool allow_host_network) {
    if (oci()) {
      OciOptions o;
      o.allow_host_network = allow_host_network;
      return make_oci_executor(io_, o);
    }
    NativeOptions o;
    o.allow_host_network = allow_host_network;
    return make_native_executor(io_, o);
  }

  void SetUp() override {
    Status available = oci() ? oci_available("runc") : native_available();
    if (!available) GTEST_SKIP() << available.error().message;
    char tmpl[] = "/tmp/boxcar-security-XXXXXX";
    workspace_ = ::mkdtemp(tmpl);
    executor_ = make_executor(false);
    auto job = executor_->prepare(JobSpec{"security", workspace_});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(*job);
  }
  void TearDown() override {
    if (job_) job_->destroy();
    if (permissive_job_) permissive_job_->destroy();
    io_.restart();
    io_.run_for(std::chrono::milliseconds(50));  // reaps and cgroup removal
    job_.reset();
    permissive_job_.reset();
    executor_.reset();  // oci: waits until its sandboxes are torn down
    permissive_executor_.reset();
    if (!workspace_.empty()) fs::remove_all(workspace_);
  }

  static SandboxSpec spec(std::string name = "probe") {
    SandboxSpec s;
    s.name = std::move(name);
    return s;
  }

  std::unique_ptr<Sandbox> start(const SandboxSpec& s, Job* job = nullptr) {
    auto sb = (job ? job : job_.get())->start(s);
    EXPECT_TRUE(sb.ok()) << sb.error().message;
    return sb.ok() ? std::move(*sb) : nullptr;
  }

  // Starts `script` and returns at once; `done` flips when it ends.
  void launch(Sandbox& sb, const std::string& script, Ran& r, bool& done) {
    Status s = boxcar::testing::start_in(sb, ExecRequest{{"/bin/bash", "-c", script}, kEnv, "."}, r, done);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  void wait_for(const bool& done) { boxcar::testing::run_until(io_, done); }

  void run_for(std::chrono::milliseconds d) {
    io_.restart();
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) io_.run_one_for(std::chrono::milliseconds(5));
  }

  Ran in_sandbox(Sandbox& sb, const std::string& script) {
    return boxcar::testing::run_in(io_, sb, ExecRequest{{"/bin/bash", "-c", script}, kEnv, "."});
  }

  Ran sandboxed(const std::string& script, const SandboxSpec& s = spec()) {
    auto sb = start(s);
    if (!sb) return {};
    return in_sandbox(*sb, script);
  }

  // A job of an executor that allows network = "host": the control for network isolation.
  Job& permissive_job() {
    if (!permissive_job_) {
      permissive_executor_ = make_executor(true);
      auto job = permissive_executor_->prepare(JobSpec{"security-host-net", workspace_});
      EXPECT_TRUE(job.ok()) << job.error().message;
      permissive_job_ = std::move(*job);
    }
    return *permissive_job_;
  }

  boost::asio::io_context io_;
  fs::path workspace_;
  std::unique_ptr<Executor> executor_, permissive_executor_;
  std::unique_ptr<Job> job_, permissive_job_;
};

}  // namespace boxcar::executors

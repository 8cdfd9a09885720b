// `boxcar run` keeps step logs, artifacts and summary.json in <workspace>/.boxcar/runs/<id>/,
// which the steps can write too. A step of a native sandbox attacks that directory to make the
// host-side boxcar (root) write somewhere else on the host: links planted where the next log,
// its time index and summary.json will be created, the artifact directory swapped for a link to
// a host directory, and finally the whole run directory moved away and replaced by a link.
// Every write must stay inside the workspace; every host file must stay as it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

size_t entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(RunDirectoryAttack, AStepCannotRedirectTheHostsWritesOutOfTheWorkspace) {
  TempDir host;  // stands for the rest of the host: outside the workspace
  host.write("victim.log", "precious log\n");
  host.write("victim.times", "precious times\n");
  host.write("victim.json", "precious summary\n");
  fs::create_directories(host.path() / "artifacts-here");
  fs::create_directories(host.path() / "run-here");
  const std::string h = host.path().string();

  TempDir ws;
  ws.write(".boxcar.toml",
           "version = 1\n"
           "[[step]]\n"
           "name = \"plant\"\n"
           "run = \"\"\"\n"
           "d=$(ls -d $BOXCAR_WORKSPACE/.boxcar/runs/*/ | tail -1); d=${d%/}\n"
           "ln -s " + h + "/victim.log $d/logs/next.log\n"
           "ln -s " + h + "/victim.times $d/logs/next.log.times\n"
           "ln -s " + h + "/victim.json $d/summary.json\n"
           "rm -rf $d/artifacts && ln -s " + h + "/artifacts-here $d/artifacts\n"
           "mv $d $d.moved && ln -s " + h + "/run-here $d\n"
           "ls -la $d.moved $d.moved/logs\n"
           "\"\"\"\n"
           "[[step]]\n"
           "name = \"next\"\n"
           "needs = [\"plant\"]\n"
           "run = \"echo output of next; echo artifact > out.txt\"\n"
           "artifacts = [\"out.txt\"]\n");
  // The host executor: an isolated step writes to its own layer and never reaches the run
  // directory the host writes to; a plain process does, so the host must not follow its links.
  auto r = run_boxcar({"run", "--executor", "host"}, ws.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  EXPECT_EQ(slurp(host.path() / "victim.log"), "precious log\n");
  EXPECT_EQ(slurp(host.path() / "victim.times"), "precious times\n");
  EXPECT_EQ(slurp(host.path() / "victim.json"), "precious summary\n");
  EXPECT_EQ(entries(host.path() / "artifacts-here"), 0u);
  EXPECT_EQ(entries(host.path() / "run-here"), 0u);

  // What boxcar wrote went into the directories it created, wherever the step moved them.
  fs::path moved;
  for (auto& e : fs::directory_iterator(ws.path() / ".boxcar/runs")) {
    if (e.path().extension() == ".moved") moved = e.path();
  }
  ASSERT_FALSE(moved.empty());
  EXPECT_NE(slurp(moved / "logs/next.log").find("output of next"), std::string::npos);
  EXPECT_FALSE(fs::is_symlink(moved / "logs/next.log"));
  EXPECT_NE(slurp(moved / "summary.json").find("\"next\""), std::string::npos);
  EXPECT_FALSE(fs::is_symlink(moved / "summary.json"));
}

// The next run must not follow a `.boxcar` link either: one committed to the repository, or
// left by a step of an earlier run.
TEST(RunDirectoryAttack, ALinkedBoxcarDirectoryIsRefused) {
  TempDir host;
  fs::create_directories(host.path() / "target");
  TempDir ws;
  ws.write(".boxcar.toml", "version = 1\n[[step]]\nname = \"t\"\nrun = \"echo hi\"\n");
  fs::create_directory_symlink(host.path() / "target", ws.path() / ".boxcar");
  auto r = run_boxcar({"run"}, ws.path());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("symlink"), std::string::npos) << r.err;
  EXPECT_EQ(entries(host.path() / "target"), 0u);
}

}  // namespace
}  // namespace boxcar::testing

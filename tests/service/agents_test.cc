// Agent identity end to end: a real `boxcar agent` registers with the shared token, keeps its
// credential private, is listed by `boxcar agents` and revoked by `boxcar agent revoke`, after
// which neither it nor a restart of it on the same data directory comes back.
#include <sys/stat.h>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

std::unique_ptr<Process> start_worker(const TempDir& work, const Server& server, const std::string& label) {
  return start_boxcar({"agent", "--server", server.url(), "--token", "tok", "--data",
                       (work / "worker").string(), "--name", "worker", "--labels", "linux,x86",
                       "--executor", "host", "--allow-local-repos"},
                      work.path(), label);
}

TEST(AgentIdentity, RegisterListRevokeAndNoComingBack) {
  TempDir work;
  make_git_repo(work / "repo", "version = 1\n[[step]]\nname = \"hi\"\nrun = \"echo hi\"\n");
  Server server(work.path(), {"--agents", "0", "--agent-token", "tok", "--api-token", "admin-secret"});
  ASSERT_TRUE(server.ok());
  auto agent = start_worker(work, server, "worker");
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  auto job = server.wait_final(id);
  ASSERT_TRUE(job) << agent->describe();
  EXPECT_EQ(str(*job, "state"), "success") << agent->describe();

  // The credential is the agent's own, private file.
  struct stat st {};
  ASSERT_EQ(::stat((work / "worker/agent-credential.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_file(work / "worker/agent-credential.json").find("tok"), std::string::npos);

  // Listing needs the admin token (the control: with it, the agent is there).
  CommandResult anonymous = run_boxcar({"agents", "--server", server.url()}, work.path());
  EXPECT_EQ(anonymous.exit_code, 2) << anonymous.err;
  EXPECT_NE(anonymous.err.find("API token"), std::string::npos) << anonymous.err;
  CommandResult listed =
      run_boxcar({"agents", "--server", server.url(), "--token", "admin-secret"}, work.path());
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("worker"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("active"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("linux,x86"), std::string::npos) << listed.out;

  CommandResult revoked = run_boxcar(
      {"agent", "revoke", "worker", "--server", server.url(), "--token", "admin-secret"}, work.path());
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_NE(revoked.out.find("revoked agent worker"), std::string::npos) << revoked.out;
  // Its held claim is refused at once: the agent stops.
  auto code = agent->wait(30s);
  ASSERT_TRUE(code) << agent->describe();
  EXPECT_EQ(*code, 3) << agent->describe();

  // Restarted on its data directory, it is refused again rather than registering anew.
  auto again = start_worker(work, server, "worker-again");
  code = again->wait(30s);
  ASSERT_TRUE(code) << again->describe();
  EXPECT_EQ(*code, 3) << again->describe();
  EXPECT_NE(again->err().find("revoked"), std::string::npos) << again->describe();
  listed = run_boxcar({"agents", "--server", server.url(), "--token", "admin-secret"}, work.path());
  EXPECT_NE(listed.out.find("revoked"), std::string::npos) << listed.out;
  EXPECT_EQ(listed.out.find("active"), std::string::npos) << listed.out;
}

}  // namespace
}  // namespace boxcar::service_test

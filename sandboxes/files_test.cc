// The file routes over real HTTP, into real sandboxes: raw files (PUT, GET with ETag and Range,
// HEAD, DELETE) and /fs/*, owned by the sandbox's root; every path attack aims at a canary file
// on the host and never reaches it, beside a control that reads a normal file the same way.
#include <fstream>

#include <boost/json.hpp>

#include "sandboxes/sandbox_suite.h"
#include "testing/scratch_dir.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

class FilesTest : public SandboxSuite {
 protected:
  static void SetUpTestSuite() {
    SandboxSuite::SetUpTestSuite();
    canary_ = new testing::ScratchDir("boxcar-files-canary");
    std::ofstream(canary_->dir / "canary") << "HOST SECRET";
    if (f_ == nullptr) return;
    auto other = f_->create_sandbox("alice");
    if (other) other_ = *other;
  }
  static void TearDownTestSuite() {
    SandboxSuite::TearDownTestSuite();
    delete canary_;
  }
  static HttpReply call(const std::string& method, const std::string& rest, const std::string& body = "",
                        HttpHeaders headers = {}, const std::string& id = "") {
    return f_->call(method, HostFixture::path(id.empty() ? id_ : id, rest), body, "alice", std::move(headers));
  }
  static std::string canary_path() { return (canary_->dir / "canary").string(); }
  static std::string host_canary() {
    std::ifstream in(canary_->dir / "canary");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static std::string code(const HttpReply& r) {
    auto v = parse(r.body);
    return v.is_object() ? str(v.as_object(), "code") : "";
  }
  static inline testing::ScratchDir* canary_ = nullptr;
  static inline std::string other_;
};

TEST_F(FilesTest, PutGetHeadDeleteRoundTrip) {
  HttpReply put = call("PUT", "/files/workspace/app.py", "print('hi')\n");
  ASSERT_EQ(put.status, 201u) << put.body;
  EXPECT_EQ(parse(put.body), (json::value{{"path", "/workspace/app.py"}, {"size", 12}}));
  EXPECT_EQ(call("PUT", "/files/workspace/app.py", "print(6*7)\n").status, 200u) << "replaced";
  HttpReply got = call("GET", "/files/workspace/app.py");
  ASSERT_EQ(got.status, 200u) << got.body;
  EXPECT_EQ(got.body, "print(6*7)\n");
  EXPECT_EQ(exec({{"argv", {"stat", "-c", "%u:%g", "/workspace/app.py"}}})["stdout"], "0:0\n");
  // ETag and a conditional GET.
  std::string etag = got.header("ETag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(call("GET", "/files/workspace/app.py", "", {{"If-None-Match", etag}}).status, 304u);
  EXPECT_EQ(call("HEAD", "/files/workspace/app.py").status, 200u);
  EXPECT_EQ(call("HEAD", "/files/workspace/none.py").status, 404u);
  // Content-Type by extension.
  ASSERT_EQ(call("PUT", "/files/tmp/page.html", "<p>hi</p>").status, 201u);
  EXPECT_EQ(call("GET", "/files/tmp/page.html").header("Content-Type"), "text/html; charset=utf-8");
  // DELETE, then it is gone.
  EXPECT_EQ(call("DELETE", "/files/workspace/app.py").status, 204u);
  HttpReply gone = call("GET", "/files/workspace/app.py");
  EXPECT_EQ(gone.status, 404u);
  EXPECT_EQ(code(gone), "file_not_found");
}

TEST_F(FilesTest, SingleRangeIs206AndOutsideIs416) {
  ASSERT_EQ(call("PUT", "/files/workspace/digits.txt", "0123456789").status, 201u);
  HttpReply part = call("GET", "/files/workspace/digits.txt", "", {{"Range", "bytes=2-5"}});
  EXPECT_EQ(part.status, 206u);
  EXPECT_EQ(part.body, "2345");
  EXPECT_EQ(part.header("Content-Range"), "bytes 2-5/10");
  HttpReply tail = call("GET", "/files/workspace/digits.txt", "", {{"Range", "bytes=-3"}});
  EXPECT_EQ(tail.body, "789");
  HttpReply outside = call("GET", "/files/workspace/digits.txt", "", {{"Range", "bytes=10-"}});
  EXPECT_EQ(outside.status, 416u);
  EXPECT_EQ(outside.header("Content-Range"), "bytes */10");
}

TEST_F(FilesTest, PutOptionsAndErrors) {
  EXPECT_EQ(call("PUT", "/files/workspace/no/such/dir/a.txt", "x").status, 404u) << "without mkdirs";
  ASSERT_EQ(call("PUT", "/files/workspace/deep/er/a.txt?mkdirs=1&mode=0600", "x").status, 201u);
  EXPECT_EQ(exec({{"argv", {"stat", "-c", "%a %u", "/workspace/deep/er/a.txt"}}})["stdout"], "600 0\n");
  ASSERT_EQ(call("PUT", "/files/workspace/deep/er/a.txt?append=1", "yz").status, 200u);
  EXPECT_EQ(call("GET", "/files/workspace/deep/er/a.txt").body, "xyz");
  HttpReply dir = call("GET", "/files/workspace/deep");
  EXPECT_EQ(dir.status, 400u);
  EXPECT_EQ(code(dir), "is_directory");
  HttpReply ro = call("PUT", "/files/usr/bin/boxcar-test", "x");
  EXPECT_EQ(ro.status, 403u) << ro.body;
  EXPECT_EQ(code(ro), "read_only");
  EXPECT_EQ(code(call("PUT", "/files/workspace/a.txt?mode=4755", "x")), "bad_request") << "no set-id bits";
  EXPECT_EQ(code(call("PUT", "/files/workspace/a.txt?mkdirs=maybe", "x")), "bad_request");
  HttpReply notempty = call("DELETE", "/files/workspace/deep");
  EXPECT_EQ(notempty.status, 409u);
  EXPECT_EQ(call("DELETE", "/files/workspace/deep?recursive=1").status, 204u);
}

TEST_F(FilesTest, FsOperations) {
  auto mk = post("/fs/mkdir", {{"path", "proj/src"}, {"parents", true}});
  ASSERT_EQ(mk.status, 200u) << mk.body;
  EXPECT_EQ(parse(mk.body).at("path"), "/workspace/proj/src") << "relative to /workspace";
  ASSERT_EQ(call("PUT", "/files/workspace/proj/src/main.c", "int main;").status, 201u);
  ASSERT_EQ(call("PUT", "/files/workspace/proj/.env", "K=V").status, 201u);

  HttpReply list = get("/fs/list?path=/workspace/proj&recursive=1");
  ASSERT_EQ(list.status, 200u) << list.body;
  auto entries = parse(list.body).at("entries").as_array();
  ASSERT_EQ(entries.size(), 3u) << list.body;
  EXPECT_EQ(entries[2].at("path"), "/workspace/proj/src/main.c");
  EXPECT_EQ(entries[2].at("type"), "file");
  EXPECT_EQ(entries[2].at("size"), 9);
  EXPECT_EQ(parse(list.body).at("truncated"), false);
  EXPECT_EQ(parse(get("/fs/list?path=/workspace/proj&hidden=0").body).at("entries").as_array().size(), 1u);

  HttpReply st = get("/fs/stat?path=/workspace/proj/src");
  EXPECT_EQ(parse(st.body).at("type"), "dir") << st.body;
  EXPECT_EQ(get("/fs/stat?path=/workspace/nope").status, 404u);
  EXPECT_EQ(parse(get("/fs/exists?path=/workspace/proj/.env").body), (json::value{{"exists", true}, {"type", "file"}}));
  EXPECT_EQ(parse(get("/fs/exists?path=/workspace/nope").body), (json::value{{"exists", false}, {"type", nullptr}}));

  EXPECT_EQ(code(post("/fs/copy", {{"from", "/workspace/proj"}, {"to", "/workspace/proj2"}})), "is_directory");
  EXPECT_EQ(post("/fs/copy", {{"from", "/workspace/proj"}, {"to", "/workspace/proj2"}, {"recursive", true}}).status, 200u);
  EXPECT_EQ(call("GET", "/files/workspace/proj2/src/main.c").body, "int main;");
  // Across file systems: /workspace to the /tmp tmpfs.
  EXPECT_EQ(post("/fs/move", {{"from", "/workspace/proj2"}, {"to", "/tmp/proj2"}}).status, 200u);
  EXPECT_EQ(call("GET", "/files/tmp/proj2/.env").body, "K=V");
  EXPECT_EQ(get("/fs/stat?path=/workspace/proj2").status, 404u);
  HttpReply exists = post("/fs/move", {{"from", "/workspace/proj"}, {"to", "/tmp/proj2"}});
  EXPECT_EQ(exists.status, 409u);
  EXPECT_EQ(code(exists), "exists");
  EXPECT_EQ(exec({{"argv", {"stat", "-c", "%u", "/tmp/proj2/src/main.c"}}})["stdout"], "0\n");

  // A typo in a body is an error naming the field, with a suggestion.
  HttpReply typo = post("/fs/mkdir", {{"pth", "x"}});
  EXPECT_EQ(typo.status, 400u);
  EXPECT_NE(typo.body.find("path"), std::string::npos) << typo.body;
}

TEST_F(FilesTest, BadPathsAre400) {
  for (std::string rest : {"/files/workspace/../etc/hostname", "/files/workspace/%2e%2e/%2E%2E/etc/hostname",
                           "/files/workspace/./a", "/files//etc/hostname", "/files/workspace/a%00b"}) {
    HttpReply r = call("GET", rest);
    EXPECT_EQ(r.status, 400u) << rest << " " << r.body;
    EXPECT_EQ(code(r), "bad_path") << rest;
  }
  HttpReply query = get("/fs/stat?path=/workspace/..");
  EXPECT_EQ(code(query), "bad_path");
  EXPECT_EQ(parse(query.body).at("field"), "path");
  EXPECT_EQ(code(post("/fs/move", {{"from", "/workspace/a"}, {"to", ""}})), "bad_path");
  EXPECT_EQ(code(get("/fs/stat?path=" + std::string(4100, 'a'))), "bad_path");
  EXPECT_EQ(call("GET", "/files/etc/hostname").status, 200u);  // control
}

// The canary is a file on the host; each route is aimed at it through paths and links the
// sandbox controls. It is never read nor written; the same routes reach the sandbox's own files.
TEST_F(FilesTest, NoRouteReachesTheHost) {
  const std::string canary = canary_path();
  auto planted = exec({{"command", "mkdir -p " + canary_->dir.string() + " && echo inside > " + canary +
                                       " && ln -sfn / /workspace/to-root && ln -sfn " + canary + " /workspace/to-canary"}});
  ASSERT_EQ(planted["exit_code"], 0) << planted;
  const std::vector<std::string> attacks = {
      canary, "/workspace/to-root" + canary, "/workspace/to-canary", "/proc/1/root" + canary,
      "/proc/self/root" + canary, "/proc/1/cwd/" + canary.substr(1),
  };
  for (const auto& path : attacks) {
    HttpReply r = call("GET", "/files" + path);
    EXPECT_EQ(r.body.find("HOST SECRET"), std::string::npos) << path;
    call("PUT", "/files" + path, "OVERWRITTEN");
    EXPECT_EQ(host_canary(), "HOST SECRET") << path;
    post("/fs/copy", {{"from", path}, {"to", "/workspace/stolen"}, {"overwrite", true}});
    EXPECT_EQ(call("GET", "/files/workspace/stolen").body.find("HOST SECRET"), std::string::npos) << path;
    post("/fs/move", {{"from", "/workspace/to-root/etc/hostname"}, {"to", path}});
    EXPECT_EQ(host_canary(), "HOST SECRET") << path;
  }
  // Magic links are refused, not followed.
  EXPECT_EQ(code(call("GET", "/files/proc/1/root/etc/hostname")), "bad_path");
  // Controls: the plain path and the planted link reach the sandbox's own copy.
  EXPECT_EQ(call("GET", "/files" + canary).status, 200u);
  EXPECT_EQ(call("GET", "/files/workspace/to-canary").body, "OVERWRITTEN");
  EXPECT_EQ(host_canary(), "HOST SECRET");
}

TEST_F(FilesTest, TwoSandboxesDoNotSeeEachOthersFiles) {
  ASSERT_FALSE(other_.empty());
  ASSERT_EQ(call("PUT", "/files/tmp/mine", "a").status, 201u);
  ASSERT_EQ(call("PUT", "/files/workspace/mine", "a").status, 201u);
  EXPECT_EQ(call("GET", "/files/tmp/mine", "", {}, other_).status, 404u);
  EXPECT_EQ(call("GET", "/files/workspace/mine", "", {}, other_).status, 404u);
  EXPECT_EQ(call("GET", "/files/tmp/mine").body, "a");  // control
  // Another owner's sandbox does not exist for it.
  HttpReply bob = f_->call("GET", HostFixture::path(id_, "/files/tmp/mine"), "", "bob");
  EXPECT_EQ(bob.status, 404u);
  EXPECT_EQ(code(bob), "sandbox_not_found");
}

TEST_F(FilesTest, AHugeListingIsTruncated) {
  ASSERT_EQ(exec({{"command", "mkdir -p /tmp/many && cd /tmp/many && seq 1 2500 | xargs touch"}})["exit_code"], 0);
  auto r = parse(get("/fs/list?path=/tmp/many&limit=2000").body);
  EXPECT_EQ(r.at("entries").as_array().size(), 2000u);
  EXPECT_EQ(r.at("truncated"), true);
  EXPECT_EQ(code(get("/fs/list?path=/tmp/many&limit=1000000")), "bad_request");
}

TEST_F(FilesTest, APutPastTheSandboxDiskIs507) {
  protocol::SandboxCreate spec;
  spec.resources.disk_bytes = 1024;
  auto small = f_->create_sandbox("alice", spec);
  ASSERT_TRUE(small.ok()) << small.error().message;
  HttpReply big = call("PUT", "/files/workspace/big", std::string(2048, 'x'), {}, *small);
  EXPECT_EQ(big.status, 507u) << big.body;
  EXPECT_EQ(code(big), "quota_exceeded");
  EXPECT_EQ(call("PUT", "/files/workspace/small", std::string(512, 'x'), {}, *small).status, 201u);  // control
  f_->remove_sandbox(*small);
}

TEST_F(FilesTest, KernelInterfaceFilesAreNeitherWrittenNorReadByTheAgent) {
  // The agent (host root) does the write through the descriptor the helper passes: a /proc file
  // would be judged by its credentials. OOM immunity for pid 1 needs CAP_SYS_RESOURCE.
  auto before = exec({{"command", "cat /proc/1/oom_score_adj"}});
  HttpReply attack = call("PUT", "/files/proc/1/oom_score_adj?append=1", "-1000");
  EXPECT_EQ(attack.status, 403u) << attack.body;
  EXPECT_EQ(code(attack), "permission_denied");
  EXPECT_EQ(str(exec({{"command", "cat /proc/1/oom_score_adj"}}), "stdout"), str(before, "stdout"));
  EXPECT_EQ(call("GET", "/files/proc/1/status").status, 403u);
  // Control: appending to an ordinary file works.
  ASSERT_EQ(call("PUT", "/files/workspace/appended", "a").status, 201u);
  EXPECT_EQ(call("PUT", "/files/workspace/appended?append=1", "b").status, 200u);
  EXPECT_EQ(call("GET", "/files/workspace/appended").body, "ab");
}

TEST_F(FilesTest, AnUploadOfAnotherOwnerIsRefusedBeforeItIsSpooled) {
  const auto spool = f_->data_dir() / "sandbox-uploads";
  auto spooled = [&] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(spool)) ++n;
    return n;
  };
  HttpReply other = f_->call("PUT", HostFixture::path(id_, "/files/workspace/x"), std::string(1 << 20, 'x'), "mallory");
  EXPECT_EQ(other.status, 404u) << other.body;
  EXPECT_EQ(spooled(), 0u);
  // Control: its owner's upload goes through (and leaves nothing spooled either).
  EXPECT_EQ(call("PUT", "/files/workspace/x", "x").status, 201u);
  EXPECT_EQ(spooled(), 0u);
}

TEST_F(FilesTest, PortsWithoutAPreviewProxyAre501) {
  HttpReply r = post("/ports", {{"port", 8000}});
  EXPECT_EQ(r.status, 501u);
  EXPECT_EQ(code(r), "unsupported");
}

}  // namespace
}  // namespace boxcar::sandboxes

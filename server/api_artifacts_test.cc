#include <unistd.h>

#include <filesystem>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/sha256.h"
#include "server/api.h"
#include "testing/test_client.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string sha(const std::string& data) { return sha256_hex(data); }

class ApiArtifactsTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-artifacts-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    data = tmpl;
    options.artifact_dir = data / "artifacts";
    options.artifact_max_file = 1000;
    options.artifact_max_job = 2500;
    ServerFixture::SetUp();
  }
  void TearDown() override {
    ServerFixture::TearDown();
    std::error_code ec;
    fs::remove_all(data, ec);
  }
  testing::TestResponse upload(int64_t id, const std::string& path, const std::string& body,
                               std::string digest = "", const std::string& agent = "a1") {
    if (digest.empty()) digest = sha(body);
    return client->post("/api/v1/agent/jobs/" + std::to_string(id) +
                            "/artifacts?step=build&sha256=" + digest + "&path=" + path,
                        body, agent_headers(agent, id));
  }
  std::string url(int64_t id, const std::string& path) {
    return "/api/v1/jobs/" + std::to_string(id) + "/artifacts/" + path;
  }
  size_t blobs() {
    size_t n = 0;
    std::error_code ec;
    for (auto& e : fs::recursive_directory_iterator(data / "artifacts" / "sha256", ec)) {
      n += e.is_regular_file();
    }
    return n;
  }
  size_t spooled() {
    size_t n = 0;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(data / "artifacts" / "tmp", ec)) n += e.is_regular_file();
    return n;
  }
  fs::path data;
};

TEST_F(ApiArtifactsTest, UploadListDownloadRoundTrip) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  std::string content = "hello artifact\n";
  auto r = upload(id, "out/report%2Etxt", content);
  ASSERT_EQ(r.status, 200u) << r.body;

  auto list = client->get("/api/v1/jobs/" + std::to_string(id) + "/artifacts");
  ASSERT_EQ(list.status, 200u);
  json::value listed = list.json();
  auto& items = listed.at("artifacts").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("path").as_string(), "out/report.txt");
  EXPECT_EQ(items[0].at("size").as_int64(), static_cast<int64_t>(content.size()));
  EXPECT_EQ(items[0].at("sha256").as_string(), sha(content));
  EXPECT_EQ(items[0].at("step").as_string(), "build");

  auto got = client->get(url(id, "out/report.txt"));
  ASSERT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, content);
  EXPECT_EQ(sha(got.body), sha(content));
  EXPECT_EQ(got.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(got.header("etag"), "\"" + sha(content) + "\"");
  EXPECT_EQ(got.header("content-length"), std::to_string(content.size()));
  EXPECT_EQ(got.header("content-security-policy"), "sandbox");
  EXPECT_EQ(got.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(client->get(url(id, "missing.txt")).status, 404u);
  EXPECT_EQ(spooled(), 0u);
}

TEST_F(ApiArtifactsTest, DigestMismatchIsRefusedAndNothingKept) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  auto r = upload(id, "a.bin", "abc", sha("abd"));
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(blobs(), 0u);
  EXPECT_EQ(spooled(), 0u);
  EXPECT_EQ(client->get(url(id, "a.bin")).status, 404u);
}

TEST_F(ApiArtifactsTest, IdenticalContentIsStoredOnce) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  ASSERT_EQ(upload(id, "one.bin", "same bytes").status, 200u);
  ASSERT_EQ(upload(id, "two/one.bin", "same bytes").status, 200u);
  ASSERT_EQ(upload(id, "one.bin", "same bytes").status, 200u);  // a retry
  EXPECT_EQ(blobs(), 1u);
  EXPECT_EQ(client->get(url(id, "two/one.bin")).body, "same bytes");
  EXPECT_EQ(client->get("/api/v1/jobs/" + std::to_string(id) + "/artifacts")
                .json().at("artifacts").as_array().size(), 2u);
}

TEST_F(ApiArtifactsTest, RangeRequests) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  ASSERT_EQ(upload(id, "r.bin", "0123456789").status, 200u);
  auto part = [&](const std::string& range) {
    return client->request(boost::beast::http::verb::get, url(id, "r.bin"), "", {{"Range", range}});
  };
  auto a = part("bytes=2-4");
  EXPECT_EQ(a.status, 206u);
  EXPECT_EQ(a.body, "234");
  EXPECT_EQ(a.header("content-range"), "bytes 2-4/10");
  auto b = part("bytes=7-");
  EXPECT_EQ(b.status, 206u);
  EXPECT_EQ(b.body, "789");
  auto c = part("bytes=-2");
  EXPECT_EQ(c.status, 206u);
  EXPECT_EQ(c.body, "89");
  auto d = part("bytes=5-100");
  EXPECT_EQ(d.status, 206u);
  EXPECT_EQ(d.body, "56789");
  auto e = part("bytes=10-");
  EXPECT_EQ(e.status, 416u);
  EXPECT_EQ(e.header("content-range"), "bytes */10");
  // the connection is still usable after a file answer
  EXPECT_EQ(client->get(url(id, "r.bin")).body, "0123456789");
}

TEST_F(ApiArtifactsTest, DotDotAndAbsolutePathsAreRefused) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  EXPECT_EQ(upload(id, "../escape", "x").status, 400u);
  EXPECT_EQ(upload(id, "%2Fetc%2Fpasswd", "x").status, 400u);
  EXPECT_EQ(client->get(url(id, "a/%2E%2E/b")).status, 400u);
  EXPECT_EQ(client->get(url(id, "%2Fetc%2Fpasswd")).status, 400u);
  EXPECT_EQ(blobs(), 0u);
}

// Attack: a link whose target is absolute or climbs above the job's artifacts is refused at
// upload, and a link to a path never uploaded answers 404 saying so; control: an in-set chain
// serves its end file's bytes, listed with the link's target.
TEST_F(ApiArtifactsTest, LinksStayInsideTheJobsArtifacts) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  auto link = [&](const std::string& path, const std::string& target) {
    return client->post("/api/v1/agent/jobs/" + std::to_string(id) + "/artifacts?step=build&path=" +
                            path + "&link=" + target,
                        "{}", agent_headers("a1", id));
  };
  EXPECT_EQ(link("lib/x", "%2Fetc%2Fpasswd").status, 400u);
  EXPECT_EQ(link("lib/x", "..%2F..%2Fx").status, 400u);
  EXPECT_EQ(link("lib/x", "..").status, 400u);
  ASSERT_EQ(upload(id, "lib/libx.so.1", "elf").status, 200u);
  ASSERT_EQ(link("lib/libx.so", "libx.so.1").status, 200u);
  ASSERT_EQ(link("lib/libx.so.0", "libx.so").status, 200u);
  ASSERT_EQ(link("lib/missing", "nothing").status, 200u);
  auto got = client->get(url(id, "lib/libx.so.0"));
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, "elf");
  auto missing = client->get(url(id, "lib/missing"));
  EXPECT_EQ(missing.status, 404u);
  EXPECT_NE(missing.body.find("is not among the job's artifacts"), std::string::npos) << missing.body;
  auto listed = client->get("/api/v1/jobs/" + std::to_string(id) + "/artifacts");
  EXPECT_NE(listed.body.find(R"("path":"lib/libx.so","kind":"link")"), std::string::npos) << listed.body;
  EXPECT_NE(listed.body.find(R"("target":"libx.so.1")"), std::string::npos) << listed.body;
  EXPECT_EQ(blobs(), 1u);
  // Nothing under a link, no link over a directory of artifacts: a download would write through
  // "p/q -> ." and "p/q/r -> ../../outside" out of its directory. Control: beside the link.
  ASSERT_EQ(link("p/q", ".").status, 200u);
  EXPECT_EQ(link("p/q/r", "..%2F..%2Foutside").status, 400u);
  EXPECT_EQ(upload(id, "p/q/f", "x").status, 400u);
  EXPECT_EQ(link("lib", "p").status, 400u);  // lib/libx.so.1 lies under it
  EXPECT_EQ(upload(id, "p/f", "x").status, 200u);
}

TEST_F(ApiArtifactsTest, UploadWithoutTheLeaseIs409) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  EXPECT_EQ(upload(id, "x.txt", "x", "", "someone-else").status, 409u);
  auto noauth = client->post("/api/v1/agent/jobs/" + std::to_string(id) +
                                 "/artifacts?path=x&sha256=" + sha("x"),
                             "x");
  EXPECT_EQ(noauth.status, 401u);
  EXPECT_EQ(spooled(), 0u);
}

TEST_F(ApiArtifactsTest, OversizedUploadsAre413) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  EXPECT_EQ(upload(id, "big.bin", std::string(1001, 'x')).status, 413u);
  ASSERT_EQ(upload(id, "a.bin", std::string(1000, 'a')).status, 200u);
  ASSERT_EQ(upload(id, "b.bin", std::string(1000, 'b')).status, 200u);
  EXPECT_EQ(upload(id, "c.bin", std::string(600, 'c')).status, 413u);  // job total 2500
  EXPECT_EQ(upload(id, "b.bin", std::string(900, 'd')).status, 200u);  // replaces b.bin
  EXPECT_EQ(spooled(), 0u);
}

TEST_F(ApiArtifactsTest, RetentionSweepRemovesUnreferencedBlobs) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  ASSERT_EQ(upload(id, "old.bin", "old").status, 200u);
  ASSERT_EQ(blobs(), 1u);
  auto gone = store->expire_artifacts(now_ms() + 1000);
  ASSERT_TRUE(gone.ok());
  ASSERT_EQ(gone->size(), 1u);
  EXPECT_EQ((*gone)[0], sha("old"));
}

class ArtifactRetentionTest : public ApiArtifactsTest {
 protected:
  void SetUp() override {
    options.lease_ms = 400;  // the sweeper runs every lease_ms/4
    options.artifact_sweep_ms = 50;
    options.artifact_retention_ms = 1;
    ApiArtifactsTest::SetUp();
  }
};

TEST_F(ArtifactRetentionTest, ExpiredArtifactsAndTheirBlobsAreSwept) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  ASSERT_EQ(upload(id, "short-lived.txt", "bye").status, 200u);
  bool gone = false;
  for (int i = 0; i < 1000 && !gone; ++i) {  // the sweeper's next pass; 20 s bound a broken test
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gone = blobs() == 0;
  }
  EXPECT_TRUE(gone);
  EXPECT_EQ(client->get(url(id, "short-lived.txt")).status, 404u);
}

}  // namespace
}  // namespace boxcar::server

// The server's copy of [[step.cache]] entries (api_caches.cc) on a real server over HTTP: an
// agent holding a job's lease uploads, looks up (exact, then newest by prefix) and fetches;
// entries never cross repositories; a fork's job cannot save; LRU past the cap.
#include <filesystem>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/sha256.h"
#include "server/api.h"
#include "testing/test_client.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

class ApiCachesTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-caches-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    data = tmpl;
    options.cache_dir = data / "caches";
    options.cache_max_bytes = 250;
    ServerFixture::SetUp();
  }
  void TearDown() override {
    ServerFixture::TearDown();
    std::error_code ec;
    fs::remove_all(data, ec);
  }
  // A claimed job of `repo` (as agent a1).
  int64_t job(const std::string& repo, bool fork = false) {
    NewJob j;
    j.repo = repo;
    j.fork = fork;
    auto id = store->enqueue(j);
    EXPECT_TRUE(id.ok());
    EXPECT_EQ(claim("a1"), *id);
    return *id;
  }
  testing::TestResponse upload(int64_t id, const std::string& key, const std::string& body) {
    return client->post("/api/v1/agent/jobs/" + std::to_string(id) + "/caches?key=" + key +
                            "&sha256=" + sha256_hex(body),
                        body, agent_headers("a1", id));
  }
  testing::TestResponse lookup(int64_t id, const std::string& key, json::array prefixes = {}) {
    return client->post("/api/v1/agent/jobs/" + std::to_string(id) + "/caches/lookup",
                        json::serialize(json::object{{"key", key}, {"restore_keys", prefixes}}),
                        agent_headers("a1", id));
  }
  testing::TestResponse fetch(int64_t id, const std::string& sha) {
    return client->request(testing::http::verb::get,
                           "/api/v1/agent/jobs/" + std::to_string(id) + "/caches/" + sha, "",
                           agent_headers("a1", id));
  }
  fs::path data;
  const std::string kRepoA = "https://example.com/a.git";
  const std::string kRepoB = "https://example.com/b.git";
};

TEST_F(ApiCachesTest, UploadThenLookupExactAndNewestByPrefixThenFetch) {
  int64_t first = job(kRepoA);
  ASSERT_EQ(upload(first, "npm-111", std::string(40, 'a')).status, 200u);
  ASSERT_EQ(upload(first, "npm-222", std::string(40, 'b')).status, 200u);
  auto again = upload(first, "npm-111", "other");
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_FALSE(again.json().at("stored").as_bool());  // the first save of a key stays

  int64_t second = job(kRepoA);  // another job of the repository (on another agent, say)
  auto exact = lookup(second, "npm-111", {"npm-"});
  ASSERT_EQ(exact.status, 200u) << exact.body;
  EXPECT_TRUE(exact.json().at("exact").as_bool());
  auto got = fetch(second, std::string(exact.json().at("sha256").as_string()));
  ASSERT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, std::string(40, 'a'));

  auto prefix = lookup(second, "npm-333", {"yarn-", "npm-"});
  ASSERT_EQ(prefix.status, 200u) << prefix.body;
  EXPECT_FALSE(prefix.json().at("exact").as_bool());
  EXPECT_EQ(prefix.json().at("key").as_string(), "npm-222");  // the newer of the two
  EXPECT_EQ(lookup(second, "npm-333", {"yarn-"}).status, 404u);
}

TEST_F(ApiCachesTest, NeverSharedBetweenRepositories) {
  int64_t a = job(kRepoA);
  ASSERT_EQ(upload(a, "deps-1", "repository a's dependencies").status, 200u);
  int64_t b = job(kRepoB);
  // Attack: repository b asks for a's key, a prefix of it, and a's tar by its hash.
  EXPECT_EQ(lookup(b, "deps-1", {"deps-", "d"}).status, 404u);
  EXPECT_EQ(fetch(b, sha256_hex("repository a's dependencies")).status, 404u);
  // Control: the same requests from a job of repository a find it.
  int64_t a2 = job(kRepoA);
  EXPECT_EQ(lookup(a2, "deps-1").status, 200u);
  EXPECT_EQ(fetch(a2, sha256_hex("repository a's dependencies")).status, 200u);
}

TEST_F(ApiCachesTest, ForkJobRestoresButNeverSaves) {
  int64_t a = job(kRepoA);
  ASSERT_EQ(upload(a, "deps-1", "from the repository").status, 200u);
  int64_t fork = job(kRepoA, true);
  auto refused = upload(fork, "deps-2", "from a fork");
  EXPECT_EQ(refused.status, 422u) << refused.body;
  EXPECT_NE(refused.body.find("fork"), std::string::npos) << refused.body;
  EXPECT_EQ(lookup(fork, "deps-2").status, 404u);
  EXPECT_EQ(lookup(fork, "deps-1").status, 200u);  // restores
}

TEST_F(ApiCachesTest, LeastRecentlyUsedGoPastTheCapAndLargerEntriesAreRefused) {
  int64_t id = job(kRepoA);
  ASSERT_EQ(upload(id, "k1", std::string(100, '1')).status, 200u);
  ASSERT_EQ(upload(id, "k2", std::string(100, '2')).status, 200u);
  // k1 used after k2 was saved: k2 is the least recently used when k3 goes past 250 bytes.
  for (auto& e : fs::recursive_directory_iterator(data / "caches")) {
    if (e.is_regular_file()) fs::last_write_time(e.path(), fs::file_time_type::clock::now() - std::chrono::hours(1));
  }
  ASSERT_EQ(lookup(id, "k1").status, 200u);
  ASSERT_EQ(upload(id, "k3", std::string(100, '3')).status, 200u);
  EXPECT_EQ(lookup(id, "k2").status, 404u);
  EXPECT_EQ(lookup(id, "k1").status, 200u);
  EXPECT_EQ(lookup(id, "k3").status, 200u);
  EXPECT_EQ(fetch(id, sha256_hex(std::string(100, '2'))).status, 404u);  // its tar went too
  auto big = upload(id, "k4", std::string(300, '4'));
  EXPECT_EQ(big.status, 413u) << big.body;
}

TEST_F(ApiCachesTest, RefusedWithoutTheLease) {
  int64_t id = job(kRepoA);
  auto r = client->post("/api/v1/agent/jobs/" + std::to_string(id) + "/caches?key=k&sha256=" + sha256_hex("x"),
                        "x", agent_headers("a1", 0));
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(upload(id, "k", "x").status, 200u);  // control: with it
}

}  // namespace
}  // namespace boxcar::server

#include "agent/cache_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "agent/cache_archive.h"
#include "agent/cache_key_hash.h"
#include "base/unique_fd.h"
#include "testing/layer_tar.h"

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;

class CacheStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-cache-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    fs::create_directories(root_ / "ws");
    fs::create_directories(root_ / "home");
    ws_.reset(::open((root_ / "ws").c_str(), O_RDONLY | O_DIRECTORY));
    home_.reset(::open((root_ / "home").c_str(), O_RDONLY | O_DIRECTORY));
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const fs::path& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }
  CacheStore store(uint64_t max = 1 << 20) {
    auto s = CacheStore::open({root_ / "store", max});
    EXPECT_TRUE(s) << s.error().message;
    return std::move(*s);
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path root_;
  unique_fd ws_, home_;
};

TEST_F(CacheStoreTest, SavesThenRestoresExactlyAsLowerLayerDirectories) {
  write("ws/node_modules/a/index.js", "a");
  fs::create_symlink("../a/index.js", root_ / "ws/node_modules/.bin");
  write("home/.npm/_cacache/x", "x");
  CacheStore s = store();
  unique_fd npm(::open((root_ / "home/.npm").c_str(), O_RDONLY | O_DIRECTORY));
  auto saved = s.save("https://x/repo.git", "npm-1", ws_.get(), {{"~/.npm", npm.get()}}, {"node_modules", "~/.npm"});
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved->bytes, 2u);
  EXPECT_TRUE(saved->warnings.empty());
  auto hit = s.lookup("https://x/repo.git", "npm-1", {});
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->exact);
  EXPECT_EQ(read(hit->workspace / "node_modules/a/index.js"), "a");
  EXPECT_EQ(fs::read_symlink(hit->workspace / "node_modules/.bin"), "../a/index.js");
  EXPECT_EQ(read(hit->home / ".npm/_cacache/x"), "x");
  EXPECT_FALSE(s.lookup("https://x/repo.git", "npm-2", {}));
}

TEST_F(CacheStoreTest, PrefixFindsTheNewestAndRepositoriesNeverShare) {
  write("ws/deps/v", "1");
  CacheStore s = store();
  ASSERT_TRUE(s.save("repo-a", "npm-old", ws_.get(), {}, {"deps"}));
  fs::last_write_time(s.lookup("repo-a", "npm-old", {})->workspace.parent_path().parent_path() / "bytes",
                      fs::file_time_type::clock::now() - std::chrono::hours(1));
  write("ws/deps/v", "2");
  ASSERT_TRUE(s.save("repo-a", "npm-new", ws_.get(), {}, {"deps"}));
  auto hit = s.lookup("repo-a", "npm-missing", {"pip-", "npm-"});
  ASSERT_TRUE(hit);
  EXPECT_FALSE(hit->exact);
  EXPECT_EQ(hit->key, "npm-new");
  EXPECT_EQ(hit->prefix, "npm-");
  EXPECT_EQ(read(hit->workspace / "deps/v"), "2");
  // The attack: the same key and prefixes from another repository. The control: repo-a above.
  EXPECT_FALSE(s.lookup("repo-b", "npm-new", {"npm-", ""}));
}

TEST_F(CacheStoreTest, LinksOutOfTheWorkspaceAreLeftOutAndALinkedPathIsRefused) {
  write("ws/deps/ok", "ok");
  fs::create_symlink("/etc/passwd", root_ / "ws/deps/abs");
  fs::create_symlink("../../../etc", root_ / "ws/deps/up");
  fs::create_symlink("/etc", root_ / "ws/linked");
  CacheStore s = store();
  auto saved = s.save("r", "k", ws_.get(), {}, {"deps"});
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved->warnings.size(), 2u);
  auto hit = s.lookup("r", "k", {});
  ASSERT_TRUE(hit);
  EXPECT_EQ(read(hit->workspace / "deps/ok"), "ok");  // the control
  EXPECT_FALSE(fs::exists(fs::symlink_status(hit->workspace / "deps/abs")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(hit->workspace / "deps/up")));
  // A cache path that is itself a link out, and one that passes through it.
  auto linked = s.save("r", "k2", ws_.get(), {}, {"linked"});
  ASSERT_TRUE(linked) << linked.error().message;
  EXPECT_EQ(linked->bytes, 0u);
  EXPECT_EQ(linked->warnings.size(), 1u);
  auto through = s.save("r", "k3", ws_.get(), {}, {"linked/ssl"});
  ASSERT_FALSE(through);
  EXPECT_NE(through.error().message.find("link"), std::string::npos) << through.error().message;
  EXPECT_FALSE(s.contains("r", "k3"));
}

TEST_F(CacheStoreTest, OverTheCapNothingIsKeptAndLeastRecentlyUsedGoFirstUnlessHeld) {
  write("ws/big/f", std::string(600 << 10, 'x'));
  CacheStore s = store(1 << 20);
  ASSERT_TRUE(s.save("r", "one", ws_.get(), {}, {"big"}));
  auto held = s.lookup("r", "one", {});  // a running step holds it
  ASSERT_TRUE(held);
  ASSERT_TRUE(s.save("r", "two", ws_.get(), {}, {"big"}));
  EXPECT_TRUE(s.contains("r", "one"));  // held: never evicted, even past the cap
  EXPECT_TRUE(s.contains("r", "two"));
  held.reset();
  ASSERT_TRUE(s.save("r", "three", ws_.get(), {}, {"big"}));
  EXPECT_FALSE(s.contains("r", "one"));  // the least recently used
  EXPECT_LE(s.bytes(), 1u << 20);
  write("ws/huge/f", std::string(2 << 20, 'x'));
  auto huge = s.save("r", "huge", ws_.get(), {}, {"huge"});
  ASSERT_FALSE(huge);
  EXPECT_FALSE(s.contains("r", "huge"));
  for (const auto& e : fs::directory_iterator(root_ / "store" / CacheStore::repo_id("r"))) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".new-")) << e.path();
  }
}

TEST_F(CacheStoreTest, HashCoversPathsAndContentsInPathOrderWithoutFollowingLinks) {
  write("ws/package-lock.json", "1");
  write("ws/sub/yarn.lock", "2");
  fs::create_symlink("/etc/passwd", root_ / "ws/sub/other.lock");
  auto a = hash_cache_globs(ws_.get(), {"package-lock.json", "**/*.lock"});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->size(), 64u);
  EXPECT_EQ(*a, *hash_cache_globs(ws_.get(), {"**/*.lock", "package-lock.json"}));
  write("ws/sub/yarn.lock", "3");
  EXPECT_NE(*a, *hash_cache_globs(ws_.get(), {"package-lock.json", "**/*.lock"}));
  auto bounded = hash_cache_globs(ws_.get(), {"**/*"}, CacheHashLimits{.files = 1});
  ASSERT_FALSE(bounded);
  EXPECT_NE(bounded.error().message.find("more than 1 files"), std::string::npos);
}

TEST_F(CacheStoreTest, AnotherMachinesStoreRestoresFromTheTarAndRefusesAHostileOne) {
  write("ws/node_modules/a/index.js", "a");
  fs::create_symlink("a/index.js", root_ / "ws/node_modules/main.js");
  CacheStore s = store();
  ASSERT_TRUE(s.save("r", "npm-1", ws_.get(), {}, {"node_modules"}));
  auto hit = s.lookup("r", "npm-1", {});
  ASSERT_TRUE(hit);
  fs::path tar = root_ / "entry.tar";
  {
    unique_fd out(::open(tar.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
    ASSERT_TRUE(pack_cache_entry(hit->workspace.parent_path(), out.get()));
  }
  auto other = CacheStore::open({root_ / "other", 1 << 20});
  ASSERT_TRUE(other);
  unique_fd in(::open(tar.c_str(), O_RDONLY));
  auto bytes = other->unpack("r", "npm-1", in.get());  // the control
  ASSERT_TRUE(bytes) << bytes.error().message;
  auto restored = other->lookup("r", "npm-1", {});
  ASSERT_TRUE(restored);
  EXPECT_EQ(read(restored->workspace / "node_modules/a/index.js"), "a");
  EXPECT_EQ(fs::read_symlink(restored->workspace / "node_modules/main.js"), "a/index.js");

  // The attacks: a compromised server's tar with `..`, and one putting a link where the store
  // writes the entry's own files.
  testing::LayerTar dotdot;
  dotdot.file("workspace/../../../escaped", "x");
  auto refused = other->unpack("r", "evil", dotdot.fd().get());
  ASSERT_FALSE(refused);
  EXPECT_FALSE(fs::exists(root_ / "escaped"));
  EXPECT_FALSE(other->contains("r", "evil"));
  testing::LayerTar key_link;
  key_link.symlink("key", "/etc/hostname");
  ASSERT_FALSE(other->unpack("r", "evil2", key_link.fd().get()));
  EXPECT_FALSE(other->contains("r", "evil2"));
  // A whiteout: unpack_layer would delete (or hide) what it names; a cache never has one.
  testing::LayerTar whiteout;
  whiteout.file("workspace/node_modules/a", "x");
  whiteout.file("workspace/node_modules/.wh.a", "");
  auto wh = other->unpack("r", "evil3", whiteout.fd().get());
  ASSERT_FALSE(wh);
  EXPECT_NE(wh.error().message.find("whiteout"), std::string::npos) << wh.error().message;
  EXPECT_FALSE(other->contains("r", "evil3"));
  // Links out of their part: the parts become lower layers of a step, and a link out would have
  // the agent mount what it names (`home/.cache -> /root`); the control above keeps
  // node_modules/main.js -> a/index.js.
  for (const auto& [link, target] : std::vector<std::pair<std::string, std::string>>{
           {"home/.cache", "/root"}, {"workspace/x", "../../../etc"}, {"home/a/b", "../../workspace/y"}}) {
    testing::LayerTar out;
    out.symlink(link, target);
    auto bad = other->unpack("r", "evil4", out.fd().get());
    ASSERT_FALSE(bad) << link;
    EXPECT_NE(bad.error().message.find("leads out of its part"), std::string::npos) << bad.error().message;
    EXPECT_FALSE(other->contains("r", "evil4"));
  }
}

}  // namespace
}  // namespace boxcar::agent

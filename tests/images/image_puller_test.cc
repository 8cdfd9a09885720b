// pull_image against docker-registry on loopback and a real layer store: a pull unpacks every
// layer and records the image; a second pull asks for no blob; two pulls at once fetch each
// layer once; a corrupted blob fails the pull naming its digest and leaves nothing behind.
#include "images/image_puller.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <mutex>
#include <thread>

#include "testing/registry_server.h"
#include "testing/scratch_dir.h"

namespace boxcar::images {
namespace {

namespace fs = std::filesystem;
using testing::RegistryServer;
using testing::TarEntry;
using testing::TestImage;
using testing::TestLayer;

TestImage two_layers(const std::string& marker) {
  TestImage image;
  TestLayer base;
  base.entries = {TarEntry::dir("etc"), TarEntry::file("etc/marker", marker), TarEntry::file("etc/gone", "x")};
  TestLayer top;
  top.entries = {TarEntry::file("hello", "hello " + marker, 0755), TarEntry::whiteout("etc/gone")};
  image.layers = {base, top};
  image.env = {"PATH=/bin", "MARKER=" + marker};
  return image;
}

class ImagePullerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);
    auto r = RegistryServer::start();
    ASSERT_TRUE(r.ok()) << r.error().message;
    registry_ = std::move(*r);
    store_ = open_store();
    RegistryOptions o;
    o.insecure = {registry_->address()};
    o.attempts = 2;
    o.backoff = Millis(20);
    client_ = RegistryClient::make(o).value();
  }
  std::unique_ptr<LayerStore> open_store() {
    StoreOptions so;
    so.dir = dir_.dir / "cache";
    auto s = LayerStore::open(so);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  Result<PulledImage> pull(LayerStore& store, const std::string& reference, bool refresh,
                           std::vector<PullEvent>* events = nullptr) {
    std::mutex mu;
    PullOptions po;
    po.refresh = refresh;
    return pull_image(store, *client_, parse_reference(reference).value(), po, [&](const PullEvent& e) {
      std::lock_guard lock(mu);
      if (events) events->push_back(e);
    });
  }
  size_t count(const std::vector<PullEvent>& events, PullEvent::Kind kind) {
    return std::count_if(events.begin(), events.end(), [&](const PullEvent& e) { return e.kind == kind; });
  }

  testing::ScratchDir dir_;
  std::unique_ptr<RegistryServer> registry_;
  std::unique_ptr<LayerStore> store_;
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(ImagePullerTest, PullsUnpacksAndRecordsTheImage) {
  auto pushed = registry_->push("app:1", two_layers("one"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  std::vector<PullEvent> events;
  auto image = pull(*store_, pushed->reference, false, &events);
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_EQ(image->reference, pushed->reference);
  EXPECT_EQ(image->digest, pushed->manifest_digest);
  ASSERT_EQ(image->layers.size(), 2u);
  EXPECT_TRUE(fs::exists(image->layers[0] / "etc" / "marker"));
  EXPECT_TRUE(fs::exists(image->layers[1] / "hello"));
  EXPECT_EQ(image->config.env[1], "MARKER=one");
  EXPECT_GT(image->size, 0u);
  EXPECT_EQ(count(events, PullEvent::Kind::resolving), 1u);
  EXPECT_EQ(count(events, PullEvent::Kind::layer_start), 2u);
  EXPECT_EQ(count(events, PullEvent::Kind::layer_unpacked), 2u);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, PullEvent::Kind::done);
  ASSERT_EQ(store_->list().size(), 1u);
}

TEST_F(ImagePullerTest, ASecondPullFetchesNoBlob) {
  auto pushed = registry_->push("app:1", two_layers("again"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  ASSERT_TRUE(pull(*store_, pushed->reference, false).ok());
  for (const auto& d : pushed->layer_digests) EXPECT_EQ(registry_->blob_gets(d), 1u) << registry_->access_log();
  std::vector<PullEvent> events;
  ASSERT_TRUE(pull(*store_, pushed->reference, false, &events).ok());
  EXPECT_EQ(count(events, PullEvent::Kind::resolving), 0u);  // not even the manifest asked for
  // Refreshed: the manifest is asked for again, the layers come from the store.
  events.clear();
  auto refreshed = pull(*store_, pushed->reference, true, &events);
  ASSERT_TRUE(refreshed.ok()) << refreshed.error().message;
  EXPECT_EQ(count(events, PullEvent::Kind::layer_cached), 2u);
  for (const auto& d : pushed->layer_digests) EXPECT_EQ(registry_->blob_gets(d), 1u) << registry_->access_log();
}

TEST_F(ImagePullerTest, TwoPullsAtOnceFetchEachLayerOnce) {
  auto pushed = registry_->push("app:1", two_layers("twice"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto other_store = open_store();  // another job's store object on the same directory
  Result<PulledImage> a = Error("not run"), b = Error("not run");
  std::thread ta([&] { a = pull(*store_, pushed->reference, false); });
  std::thread tb([&] { b = pull(*other_store, pushed->reference, false); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(a->layers, b->layers);
  for (const auto& d : pushed->layer_digests) EXPECT_EQ(registry_->blob_gets(d), 1u) << registry_->access_log();
}

TEST_F(ImagePullerTest, ACorruptedBlobFailsThePullAndLeavesNothing) {
  auto good = registry_->push("good:1", two_layers("good"));
  ASSERT_TRUE(good.ok()) << good.error().message;
  TestImage bad_image = two_layers("bad");
  bad_image.layers[0].entries.push_back(TarEntry::file("etc/only-in-bad", std::string(64 << 10, 'b')));
  auto bad = registry_->push("bad:1", bad_image);
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  const std::string corrupt = bad->layer_digests[0];
  ASSERT_TRUE(registry_->corrupt_blob(corrupt).ok());

  auto failed = pull(*store_, bad->reference, false);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find(corrupt), std::string::npos) << failed.error().message;
  EXPECT_NE(failed.error().message.find("does not match its digest"), std::string::npos) << failed.error().message;
  EXPECT_FALSE(fs::exists(dir_.dir / "cache" / "layers" / corrupt.substr(7)));
  EXPECT_TRUE(fs::is_empty(dir_.dir / "cache" / "tmp"));
  EXPECT_TRUE(store_->list().empty());
  // Control: the intact image from the same registry pulls into the same store.
  auto ok = pull(*store_, good->reference, false);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
}


// The fixture's hostile entries survive the push (skopeo passes layers through untouched) and
// meet the store's rules on the way in: setuid stripped, devices skipped, `..` refused.
TEST_F(ImagePullerTest, HostileLayersReachTheStoreAsPushed) {
  TestImage tame = two_layers("tame");
  TestLayer odd;
  odd.entries = {TarEntry::file("suid", "#!/bin/sh\n", 04755), TarEntry::device("null", 1, 3),
                 TarEntry::symlink("out", "/etc/shadow")};
  tame.layers.push_back(odd);
  auto pushed = registry_->push("tame:1", tame);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto image = pull(*store_, pushed->reference, false);
  ASSERT_TRUE(image.ok()) << image.error().message;
  struct stat st {};
  ASSERT_EQ(::lstat((image->layers[2] / "suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(image->layers[2] / "null")));
  EXPECT_EQ(fs::read_symlink(image->layers[2] / "out"), "/etc/shadow");

  TestImage escaping = two_layers("escaping");
  escaping.layers[1].entries.push_back(TarEntry::file("../escaped", "x"));
  auto bad = registry_->push("escaping:1", escaping);
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  auto refused = pull(*store_, bad->reference, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("../escaped"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(fs::exists(dir_.dir / "escaped"));
  EXPECT_FALSE(fs::exists(dir_.dir / "cache" / "escaped"));
}

}  // namespace
}  // namespace boxcar::images

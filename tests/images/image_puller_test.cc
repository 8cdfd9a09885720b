// pull_image against docker-registry on loopback and a real layer store: a pull unpacks every
// layer and records the image; a second pull asks for no blob; two pulls at once fetch each
// layer once; a corrupted blob fails the pull naming its digest and leaves nothing behind.
#include "images/image_puller.h"

#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
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


// Bytes gzip cannot shrink: a layer blob about this large.
std::string noise(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  for (auto& c : out) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return out;
}

TestImage one_file_per_layer(const std::vector<std::string>& contents) {
  TestImage image;
  for (size_t i = 0; i < contents.size(); ++i) {
    TestLayer l;
    l.entries = {TarEntry::file("f" + std::to_string(i), contents[i])};
    image.layers.push_back(l);
  }
  return image;
}

std::unique_ptr<LayerStore> store_capped(const fs::path& dir, uint64_t max_bytes) {
  StoreOptions so;
  so.dir = dir;
  so.max_bytes = max_bytes;
  return LayerStore::open(so).value();
}

// A manifest's declared sizes are checked before any blob is asked for: one layer over the cap,
// or layers over it together, are refused naming the image and the cap. Control: a small image
// pulls into the same store.
TEST_F(ImagePullerTest, DeclaredSizesOverTheCapAreRefusedBeforeAnyDownload) {
  auto store = store_capped(dir_.dir / "small", 256 << 10);
  auto big = registry_->push("big:1", one_file_per_layer({noise(300 << 10, 1)}));
  auto many = registry_->push("many:1", one_file_per_layer({noise(100 << 10, 2), noise(100 << 10, 3), noise(100 << 10, 4)}));
  auto small = registry_->push("small:1", one_file_per_layer({"tiny"}));
  ASSERT_TRUE(big.ok() && many.ok() && small.ok());
  for (const auto* pushed : {&*big, &*many}) {
    auto r = pull(*store, pushed->reference, false);
    ASSERT_FALSE(r.ok()) << pushed->reference;
    EXPECT_EQ(r.error().code, ErrorCode::limit_exceeded) << r.error().message;
    EXPECT_EQ(r.error().subject, "image_cache_size");
    EXPECT_NE(r.error().message.find(pushed->reference), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("256.0 KiB"), std::string::npos) << r.error().message;
    for (const auto& d : pushed->layer_digests) EXPECT_EQ(registry_->blob_gets(d), 0u) << registry_->access_log();
  }
  EXPECT_TRUE(store->list().empty());
  auto ok = pull(*store, small->reference, false);
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

// Small blobs that unpack large: each layer fits the cap alone, the image's layers together do
// not, so the image is refused and nothing is recorded. Control: two of them fit.
TEST_F(ImagePullerTest, AnImagesLayersShareOneUnpackedBudget) {
  auto store = store_capped(dir_.dir / "small", 1 << 20);
  std::string zeros(400 << 10, '\0');
  auto three = registry_->push("three:1", one_file_per_layer({zeros, zeros + "1", zeros + "2"}));
  auto two = registry_->push("two:1", one_file_per_layer({zeros, zeros + "1"}));
  ASSERT_TRUE(three.ok() && two.ok());
  auto r = pull(*store, three->reference, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::limit_exceeded) << r.error().message;
  EXPECT_NE(r.error().message.find(three->reference), std::string::npos) << r.error().message;
  EXPECT_TRUE(store->list().empty());
  auto ok = pull(*store, two->reference, false);
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

// overlayfs refuses the same lower twice ("conflicting lowerdir path"): an image listing a layer
// twice is used with that layer once, at its topmost place. The probe: the kernel refuses the
// manifest's list as it is, and mounts the pulled one.
TEST_F(ImagePullerTest, ALayerListedTwiceIsUsedOnceAtItsTopmostPlace) {
  TestImage image = one_file_per_layer({"a", "b"});
  image.layers.push_back(image.layers[0]);  // a, b, a
  auto pushed = registry_->push("twice:1", image);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  ASSERT_EQ(pushed->layer_digests.size(), 3u);
  ASSERT_EQ(pushed->layer_digests[0], pushed->layer_digests[2]);
  auto pulled = pull(*store_, pushed->reference, false);
  ASSERT_TRUE(pulled.ok()) << pulled.error().message;
  ASSERT_EQ(pulled->layers.size(), 2u);
  EXPECT_TRUE(fs::exists(pulled->layers[0] / "f1"));  // b below
  EXPECT_TRUE(fs::exists(pulled->layers[1] / "f0"));  // a on top
  ASSERT_EQ(store_->find(pushed->reference)->layers, pulled->layers);

  fs::path target = dir_.dir / "mnt";
  fs::create_directories(target);
  auto mount = [&](const std::vector<fs::path>& lowers) {  // lowerdir names the top first
    std::string opt = "lowerdir=";
    for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) opt += (it == lowers.rbegin() ? "" : ":") + it->string();
    int r = ::mount("overlay", target.c_str(), "overlay", MS_RDONLY, opt.c_str());
    if (r == 0) ::umount2(target.c_str(), MNT_DETACH);
    return r == 0;
  };
  EXPECT_FALSE(mount({pulled->layers[1], pulled->layers[0], pulled->layers[1]}));  // as the manifest lists
  EXPECT_TRUE(mount(pulled->layers));
}

// A cancel set while a layer downloads ends the pull: the download stops, nothing is left in
// the store. Control: the same pull, not cancelled, succeeds.
TEST_F(ImagePullerTest, ACancelledPullStopsDownloadingAndLeavesNothing) {
  auto pushed = registry_->push("large:1", one_file_per_layer({noise(4 << 20, 7)}));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  std::atomic<bool> cancel{false};
  PullOptions po;
  po.cancel = &cancel;
  uint64_t seen = 0;
  auto r = pull_image(*store_, *client_, parse_reference(pushed->reference).value(), po, [&](const PullEvent& e) {
    if (e.kind == PullEvent::Kind::layer_progress) {
      seen = e.bytes_done;
      cancel = true;  // the run was cancelled while its image downloads
    }
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::conflict) << r.error().message;
  EXPECT_NE(r.error().message.find("cancelled"), std::string::npos) << r.error().message;
  EXPECT_LT(seen, 4u << 20);
  EXPECT_FALSE(fs::exists(dir_.dir / "cache" / "layers" / pushed->layer_digests[0].substr(7)));
  EXPECT_TRUE(fs::is_empty(dir_.dir / "cache" / "tmp"));
  EXPECT_TRUE(store_->list().empty());
  cancel = false;
  auto ok = pull_image(*store_, *client_, parse_reference(pushed->reference).value(), po, nullptr);
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

// A pull can hand its image back leased: a refresh that re-tags the reference to other layers,
// then a prune, leave the leased image's layers in place. Control: with the lease dropped,
// the prune takes them.
TEST_F(ImagePullerTest, ALeasedPullKeepsItsLayersThroughARefreshAndAPrune) {
  auto first = registry_->push("app:1", two_layers("first"));
  ASSERT_TRUE(first.ok()) << first.error().message;
  ImageLease lease;
  auto running = pull_image(*store_, *client_, parse_reference(first->reference).value(), PullOptions{}, nullptr, &lease);
  ASSERT_TRUE(running.ok()) << running.error().message;
  EXPECT_TRUE(lease.held());
  EXPECT_EQ(lease.layers_pinned(), 2u);

  auto second = registry_->push("app:1", two_layers("second"));  // the tag moves on
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_TRUE(pull(*store_, second->reference, true).ok());  // `boxcar image pull app:1`
  ASSERT_TRUE(store_->prune().ok());
  for (const auto& l : running->layers) EXPECT_TRUE(fs::exists(l)) << l;

  lease = ImageLease();  // the step ended
  auto freed = store_->prune();
  ASSERT_TRUE(freed.ok());
  EXPECT_GT(*freed, 0u);
  for (const auto& l : running->layers) EXPECT_FALSE(fs::exists(l)) << l;
}

}  // namespace
}  // namespace boxcar::images

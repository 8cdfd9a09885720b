#include "images/layer_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "base/sha256.h"
#include "images/unpack.h"
#include "testing/layer_tar.h"
#include "testing/scratch_dir.h"

namespace boxcar::images {
namespace {

namespace fs = std::filesystem;
using testing::LayerTar;

// What a blob() layer of 1000 bytes takes on disk for the cap: its content and its one inode.
constexpr uint64_t kOnDisk = 1000 + kEntryBytes;

// A layer blob with one file of `size` bytes named `name`, and its digest.
struct Blob {
  std::string bytes;
  std::string digest;
};
Blob blob(const std::string& name, size_t size = 1000) {
  LayerTar tar;
  tar.file(name, std::string(size, 'x'));
  Blob b{tar.bytes(), ""};
  b.digest = "sha256:" + sha256_hex(b.bytes);
  return b;
}

std::function<Status(int)> serve(const Blob& b, std::atomic<int>* calls = nullptr) {
  return [&b, calls](int fd) -> Status {
    if (calls) ++*calls;
    if (::write(fd, b.bytes.data(), b.bytes.size()) != static_cast<ssize_t>(b.bytes.size())) return Error{"write"};
    return {};
  };
}

bool empty_dir(const fs::path& p) { return fs::is_directory(p) && fs::is_empty(p); }

class LayerStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<LayerStore> open_store(uint64_t max_bytes = 1 << 30) {
    StoreOptions o;
    o.dir = scratch.dir / "images";
    o.max_bytes = max_bytes;
    auto s = LayerStore::open(o);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  // Ensures each blob's layer and records an image made of them.
  PulledImage pull(LayerStore& store, const std::string& ref, const std::vector<const Blob*>& blobs) {
    PulledImage image;
    image.reference = ref;
    image.digest = "sha256:" + sha256_hex(ref);
    ImageLease pins;  // the pull's own pins, dropped once the record holds the layers
    for (const Blob* b : blobs) {
      auto dir = store.ensure_layer(b->digest, "application/vnd.oci.image.layer.v1.tar", serve(*b), pins);
      EXPECT_TRUE(dir.ok()) << dir.error().message;
      if (dir.ok()) image.layers.push_back(*dir);
    }
    auto s = store.record(image);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return image;
  }
  // Sets an image's last use (its record's mtime) to `t`.
  void last_used(const std::string& ref, time_t t) {
    fs::path rec = scratch.dir / "images/images" / (sha256_hex(ref) + ".json");
    timespec ts[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, rec.c_str(), ts, 0), 0);
  }
  bool has_layer(const Blob& b) { return fs::exists(scratch.dir / "images/layers" / b.digest.substr(7) / "fs"); }

  testing::ScratchDir scratch{"boxcar-store"};
};

TEST_F(LayerStoreTest, OpenMakesPrivateDirectories) {
  auto store = open_store();
  for (const char* d : {"", "layers", "images", "locks", "tmp"}) {
    struct stat st {};
    ASSERT_EQ(::stat((scratch.dir / "images" / d).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u) << d;
  }
}

TEST_F(LayerStoreTest, TwoThreadsDownloadALayerOnce) {
  auto store = open_store();
  Blob b = blob("f");
  std::atomic<int> calls{0}, entered{0};
  // The downloader waits until the other thread is on its way in, so the two overlap.
  auto download = [&](int fd) -> Status {
    while (entered.load() < 2) std::this_thread::yield();
    return serve(b, &calls)(fd);
  };
  Result<fs::path> r1 = Error{""}, r2 = Error{""};
  bool c1 = false, c2 = false;
  ImageLease l1, l2;
  std::thread t1([&] { ++entered, r1 = store->ensure_layer(b.digest, "", download, l1, &c1); });
  std::thread t2([&] { ++entered, r2 = store->ensure_layer(b.digest, "", download, l2, &c2); });
  t1.join();
  t2.join();
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(*r1, *r2);
  EXPECT_NE(c1, c2);  // one downloaded, the other reused it
  EXPECT_TRUE(fs::exists(*r1 / "f"));
  EXPECT_TRUE(empty_dir(scratch.dir / "images/tmp"));
}

TEST_F(LayerStoreTest, TwoProcessesDownloadALayerOnce) {
  auto parent_store = open_store();
  Blob b = blob("f");
  fs::path count = scratch.dir / "downloads";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  // Each process says it is coming (one byte), the downloader waits for both: they overlap.
  auto download = [&](int fd) -> Status {
    int c = ::open(count.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    [[maybe_unused]] auto w = ::write(c, "d", 1);
    ::close(c);
    char buf[2];
    size_t got = 0;
    pollfd p{ready[0], POLLIN, 0};
    while (got < 2 && ::poll(&p, 1, 10'000) == 1) {
      ssize_t n = ::read(ready[0], buf, 2 - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    return serve(b)(fd);
  };
  fs::path expected = scratch.dir / "images/layers" / b.digest.substr(7) / "fs";
  pid_t child = ::fork();
  if (child == 0) {
    auto store = LayerStore::open(parent_store->options());
    [[maybe_unused]] auto w = ::write(ready[1], "c", 1);
    ImageLease pins;
    auto r = (*store)->ensure_layer(b.digest, "", download, pins);
    ::_exit(r.ok() && *r == expected ? 0 : 1);
  }
  [[maybe_unused]] auto w = ::write(ready[1], "p", 1);
  ImageLease pins;
  auto r = parent_store->ensure_layer(b.digest, "", download, pins);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, expected);
  EXPECT_EQ(fs::file_size(count), 1u);  // one download between the two processes
}

TEST_F(LayerStoreTest, FailedDownloadOrUnpackLeavesNothing) {
  auto store = open_store();
  Blob b = blob("f");
  auto broken = [&](int fd) -> Status {
    [[maybe_unused]] auto w = ::write(fd, b.bytes.data(), 100);
    return Error{"blob sha256:abc: digest mismatch", 0, ErrorCode::invalid_input};
  };
  ImageLease pins;
  auto r = store->ensure_layer(b.digest, "", broken, pins);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "blob sha256:abc: digest mismatch");
  EXPECT_FALSE(has_layer(b));
  EXPECT_TRUE(empty_dir(scratch.dir / "images/tmp"));

  // A blob that is no tar: the unpacker's error, named by the digest.
  Blob junk{"definitely not a tar archive", b.digest};
  auto bad = store->ensure_layer(b.digest, "", serve(junk), pins);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("layer " + b.digest + ": "), std::string::npos) << bad.error().message;
  EXPECT_FALSE(has_layer(b));
  EXPECT_TRUE(empty_dir(scratch.dir / "images/tmp"));

  bool cached = true;  // control: the same digest with a good download
  auto ok = store->ensure_layer(b.digest, "", serve(b), pins, &cached);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_FALSE(cached);
  EXPECT_TRUE(has_layer(b));
}

TEST_F(LayerStoreTest, RecordsRoundTripThroughFindAndList) {
  auto store = open_store();
  Blob b1 = blob("a"), b2 = blob("b", 500);
  PulledImage image;
  image.reference = "docker.io/library/busybox:1";
  image.digest = "sha256:" + std::string(64, 'e');
  image.config = {{"PATH=/bin", "A=b"}, "1000:1000", {"/entry"}, {"sh", "-c"}, "/work"};
  ImageLease pins;
  for (const Blob* b : {&b1, &b2}) image.layers.push_back(*store->ensure_layer(b->digest, "", serve(*b), pins));
  ASSERT_TRUE(store->record(image).ok());

  auto found = store->find(image.reference);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->reference, image.reference);
  EXPECT_EQ(found->digest, image.digest);
  EXPECT_EQ(found->layers, image.layers);
  EXPECT_EQ(found->config.env, image.config.env);
  EXPECT_EQ(found->config.user, "1000:1000");
  EXPECT_EQ(found->config.entrypoint, image.config.entrypoint);
  EXPECT_EQ(found->config.cmd, image.config.cmd);
  EXPECT_EQ(found->config.working_dir, "/work");
  EXPECT_EQ(found->size, 1500u + 2 * kEntryBytes);
  auto all = store->list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].image.reference, image.reference);
  EXPECT_GT(all[0].last_used, 0);

  EXPECT_FALSE(store->find("docker.io/library/other:1").has_value());
  PulledImage outside = image;  // a layer that is no layer of this store
  outside.layers = {scratch.dir};
  EXPECT_EQ(store->record(outside).error().code, ErrorCode::not_found);
  // A record whose layer went missing is incomplete: not found.
  fs::remove_all(image.layers[1].parent_path());
  EXPECT_FALSE(store->find(image.reference).has_value());
}

TEST_F(LayerStoreTest, CollectorSparesLeasedImagesAndRemovesTheLeastRecentlyUsed) {
  Blob a = blob("a"), b = blob("b"), c = blob("c");
  {
    auto store = open_store();
    pull(*store, "r/a:1", {&a});
    pull(*store, "r/b:1", {&b});
    pull(*store, "r/c:1", {&c});
  }
  last_used("r/a:1", 1000);  // a is the least recently used, then b, then c
  last_used("r/b:1", 2000);
  last_used("r/c:1", 3000);
  auto store = open_store(kOnDisk * 5 / 2);  // three images held: one must go
  {
    ImageLease lease = store->lease("r/a:1");
    ASSERT_TRUE(lease.held());
    auto freed = store->collect_garbage();
    ASSERT_TRUE(freed.ok());
    EXPECT_EQ(*freed, kOnDisk);
    EXPECT_TRUE(store->find("r/a:1").has_value());  // leased: spared though oldest
    EXPECT_FALSE(store->find("r/b:1").has_value());  // the next oldest went
    EXPECT_TRUE(store->find("r/c:1").has_value());
    EXPECT_FALSE(has_layer(b));
  }
  last_used("r/a:1", 1000);
  auto smaller = open_store(kOnDisk * 3 / 2);
  auto freed = smaller->collect_garbage();  // the lease is gone: a goes now
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, kOnDisk);
  EXPECT_FALSE(has_layer(a));
  EXPECT_TRUE(has_layer(c));
  EXPECT_EQ(smaller->list().size(), 1u);
}

TEST_F(LayerStoreTest, RecordOverTheCapCollectsOthersButNeverItself) {
  Blob a = blob("a"), b = blob("b");
  auto store = open_store(kOnDisk * 3 / 2);
  pull(*store, "r/a:1", {&a});
  last_used("r/a:1", 1000);
  pull(*store, "r/b:1", {&b});  // two layers > 1.5: a goes, b (just recorded) stays
  EXPECT_FALSE(store->find("r/a:1").has_value());
  EXPECT_TRUE(store->find("r/b:1").has_value());
  // An image over the cap by itself (each layer fits, both do not) is still usable once recorded.
  Blob c = blob("c"), d = blob("d");
  pull(*store, "r/cd:1", {&c, &d});
  EXPECT_TRUE(store->find("r/cd:1").has_value());
  EXPECT_FALSE(store->find("r/b:1").has_value());  // what could go, went
}

TEST_F(LayerStoreTest, PruneFreesUnreferencedLayersOnly) {
  auto store = open_store();
  Blob l1 = blob("1", 100), l2 = blob("2", 200), l3 = blob("3", 300), l4 = blob("4", 400);
  pull(*store, "r/a:1", {&l1, &l2});
  pull(*store, "r/b:1", {&l2, &l3});
  ASSERT_TRUE(store->remove("r/a:1").ok());
  // A layer a pull in progress holds (ensured, not yet recorded) in another store object.
  auto other = open_store();
  auto in_progress = std::make_unique<ImageLease>();
  ASSERT_TRUE(other->ensure_layer(l4.digest, "", serve(l4), *in_progress).ok());

  auto freed = store->prune();
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 100u + kEntryBytes);  // l1 only
  EXPECT_FALSE(has_layer(l1));
  EXPECT_TRUE(has_layer(l2));  // still b's
  EXPECT_TRUE(has_layer(l3));
  EXPECT_TRUE(has_layer(l4));  // pinned by the pull in progress
  EXPECT_TRUE(store->find("r/b:1").has_value());
  EXPECT_TRUE(empty_dir(scratch.dir / "images/tmp"));

  in_progress.reset();  // that pull gave up: its layer is garbage now
  EXPECT_EQ(*store->prune(), 400u + kEntryBytes);
  EXPECT_FALSE(has_layer(l4));
}

TEST_F(LayerStoreTest, RemoveNamesWhatIsMissingOrInUse) {
  auto store = open_store();
  auto missing = store->remove("docker.io/library/nothing:1");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_NE(missing.error().message.find("docker.io/library/nothing:1"), std::string::npos);

  Blob a = blob("a");
  pull(*store, "r/a:1", {&a});
  {
    ImageLease lease = store->lease("r/a:1");
    auto busy = store->remove("r/a:1");
    ASSERT_FALSE(busy.ok());
    EXPECT_EQ(busy.error().code, ErrorCode::conflict);
  }
  EXPECT_TRUE(store->remove("r/a:1").ok());  // control: unleased, it goes
  EXPECT_FALSE(store->find("r/a:1").has_value());
}

TEST_F(LayerStoreTest, OpenRemovesWhatADeadProcessLeftInTmp) {
  open_store();
  fs::path tmp = scratch.dir / "images/tmp";
  std::string dead(64, 'a'), live(64, 'b');
  fs::create_directories(tmp / ("layer-" + dead + "-x") / "fs");
  fs::create_directories(tmp / ("layer-" + live + "-y") / "fs");
  fs::create_directories(tmp / "trash-z");
  // A live process holds the lock of what it is unpacking.
  int held = ::open((scratch.dir / "images/locks" / (live + ".lock")).c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_EQ(::flock(held, LOCK_EX), 0);
  open_store();
  EXPECT_FALSE(fs::exists(tmp / ("layer-" + dead + "-x")));
  EXPECT_FALSE(fs::exists(tmp / "trash-z"));
  EXPECT_TRUE(fs::exists(tmp / ("layer-" + live + "-y")));
  ::close(held);
}

}  // namespace
}  // namespace boxcar::images

namespace boxcar::images {
namespace {

// A running step's lease holds its layers, not only its record: `boxcar image pull` of the same
// reference replaces the record, and neither that record()'s collection nor a prune may take
// the layers the step still mounts. Control: once the lease is gone, they go.
TEST_F(LayerStoreTest, ALeaseKeepsTheLayersOfARecordReplacedUnderIt) {
  auto store = open_store();
  Blob a = blob("a"), b = blob("b");
  pull(*store, "r/x:1", {&a});
  ImageLease lease = store->lease("r/x:1");
  ASSERT_TRUE(store->find("r/x:1", &lease).has_value());
  EXPECT_EQ(lease.layers_pinned(), 1u);
  pull(*store, "r/x:1", {&b});  // refreshed: the record names b only now
  EXPECT_EQ(*store->prune(), 0u);
  EXPECT_TRUE(has_layer(a));
  auto tight = open_store(kOnDisk);  // over the cap with a and b: the collector wants a gone
  EXPECT_TRUE(tight->collect_garbage().ok());
  EXPECT_TRUE(has_layer(a));

  lease = ImageLease();  // the step ended
  EXPECT_EQ(*store->prune(), kOnDisk);
  EXPECT_FALSE(has_layer(a));
  EXPECT_TRUE(has_layer(b));
}

// Each pull holds its own pin: two pulls sharing a layer, the first ending (recorded or failed)
// does not unpin the second's. Control: when both have ended, the unreferenced layer goes.
TEST_F(LayerStoreTest, TwoPullsSharingALayerKeepTheirOwnPins) {
  auto store = open_store();
  Blob a = blob("a");
  auto first = std::make_unique<ImageLease>(), second = std::make_unique<ImageLease>();
  ASSERT_TRUE(store->ensure_layer(a.digest, "", serve(a), *first).ok());
  bool cached = false;
  ASSERT_TRUE(store->ensure_layer(a.digest, "", serve(a), *second, &cached).ok());
  EXPECT_TRUE(cached);
  first.reset();  // the first pull failed (or recorded and its record was removed)
  EXPECT_EQ(*store->prune(), 0u);
  EXPECT_TRUE(has_layer(a));
  second.reset();
  EXPECT_EQ(*store->prune(), kOnDisk);
  EXPECT_FALSE(has_layer(a));
}

// A manifest may declare any blob size: over the cap, or over the disk's free space, the layer
// is refused before a byte is downloaded. Control: the real size downloads on the same store.
TEST_F(LayerStoreTest, ADeclaredSizeOverTheCapOrTheFreeDiskIsRefusedBeforeDownloading) {
  fs::path small = scratch.dir / "small";
  fs::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=4m") != 0) GTEST_SKIP() << "cannot mount a tmpfs";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{small};
  StoreOptions o;
  o.dir = small / "images";
  o.max_bytes = 1 << 30;
  auto store = LayerStore::open(o).value();
  Blob a = blob("a");
  std::atomic<int> calls{0};
  ImageLease pins;

  auto huge = store->ensure_layer(a.digest, "", serve(a, &calls), pins, nullptr, LayerLimits{2ull << 40});
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().code, ErrorCode::limit_exceeded);
  EXPECT_EQ(huge.error().subject, "image_cache_size");
  EXPECT_NE(huge.error().message.find("2.0 TiB"), std::string::npos) << huge.error().message;

  auto full = store->ensure_layer(a.digest, "", serve(a, &calls), pins, nullptr, LayerLimits{64 << 20});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::unavailable);
  EXPECT_NE(full.error().message.find("free"), std::string::npos) << full.error().message;
  EXPECT_EQ(calls.load(), 0);

  auto ok = store->ensure_layer(a.digest, "", serve(a, &calls), pins, nullptr, LayerLimits{a.bytes.size()});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(calls.load(), 1);
}

// A layer already in the store still counts toward its image's budget. Control: the same layer
// under a budget of its own.
TEST_F(LayerStoreTest, CachedLayersCountTowardTheImageBudget) {
  Blob a = blob("a"), b = blob("b");
  auto store = open_store(kOnDisk * 3 / 2);
  ImageLease pins;
  ASSERT_TRUE(store->ensure_layer(b.digest, "", serve(b), pins).ok());  // b is cached now
  std::atomic<uint64_t> image_bytes{0};
  ASSERT_TRUE(store->ensure_layer(a.digest, "", serve(a), pins, nullptr, LayerLimits{0, &image_bytes}).ok());
  auto over = store->ensure_layer(b.digest, "", serve(b), pins, nullptr, LayerLimits{0, &image_bytes});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::limit_exceeded);
  std::atomic<uint64_t> alone{0};
  EXPECT_TRUE(store->ensure_layer(b.digest, "", serve(b), pins, nullptr, LayerLimits{0, &alone}).ok());
}

}  // namespace
}  // namespace boxcar::images

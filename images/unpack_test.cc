#include "images/unpack.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <atomic>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <sstream>

#include "testing/layer_tar.h"
#include "testing/scratch_dir.h"

namespace boxcar::images {
namespace {

namespace fs = std::filesystem;
using testing::LayerTar;
using Compression = LayerTar::Compression;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct stat lstat_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

class UnpackTest : public ::testing::Test {
 protected:
  Result<UnpackStats> unpack(LayerTar& tar, const std::string& media_type = "") {
    unique_fd fd = tar.fd();
    return unpack_layer(fd.get(), media_type, layer, options);
  }
  // Nothing but the layer directory (or nothing at all) in the scratch directory.
  std::vector<std::string> scratch_entries() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(scratch.dir)) names.push_back(e.path().filename());
    return names;
  }

  testing::ScratchDir scratch{"boxcar-unpack"};
  fs::path layer = scratch.dir / "layer";
  UnpackOptions options;
};

TEST_F(UnpackTest, PlainGzipAndZstdLayersUnpack) {
  struct Case {
    Compression c;
    const char* media_type;
  } cases[] = {{Compression::none, "application/vnd.oci.image.layer.v1.tar"},
               {Compression::gzip, "application/vnd.docker.image.rootfs.diff.tar.gzip"},
               {Compression::zstd, "application/vnd.oci.image.layer.v1.tar+zstd"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.media_type);
    fs::remove_all(layer);
    LayerTar tar(c.c);
    tar.dir("etc", 0755).file("etc/os-release", "ID=test\n", 0644, 0, 0).file("./bin/tool", "#!x", 0755, 1000, 1000);
    tar.symlink("etc/link", "../bin/tool");
    auto r = unpack(tar, c.media_type);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(slurp(layer / "etc/os-release"), "ID=test\n");
    struct stat st = lstat_of(layer / "bin/tool");
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_EQ(st.st_uid, options.id_base + 1000);
    EXPECT_EQ(st.st_mtim.tv_sec, 1'600'000'000);
    EXPECT_EQ(lstat_of(layer / "etc").st_mtim.tv_sec, 1'600'000'000);  // kept though entries went in
    EXPECT_EQ(fs::read_symlink(layer / "etc/link"), "../bin/tool");
    // Contents and link text, and an inode each: etc, etc/os-release, bin, bin/tool, etc/link.
    EXPECT_EQ(r->bytes, 8u + 3u + 11u + 5 * kEntryBytes);
    EXPECT_EQ(lstat_of(layer).st_uid, options.id_base);
  }
}

TEST_F(UnpackTest, MediaTypeMustAgreeWithTheContent) {
  LayerTar tar(Compression::gzip);
  tar.file("f", "x");
  auto bad = unpack(tar, "application/vnd.oci.image.layer.v1.tar+zstd");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("says zstd but the blob is gzip"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(fs::exists(layer));
  auto config = unpack(tar, "application/vnd.oci.image.config.v1+json");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("no layer type"), std::string::npos) << config.error().message;
  auto good = unpack(tar, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_TRUE(good.ok()) << good.error().message;
}

TEST_F(UnpackTest, DotDotEntryIsRefusedAndNothingLandsOutside) {
  LayerTar tar;
  tar.file("ok", "fine").file("../escape", "owned").file("a/../../escape2", "owned");
  auto r = unpack(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("\"../escape\""), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().code, ErrorCode::invalid_input);
  EXPECT_TRUE(scratch_entries().empty());  // no escape beside the layer, and no half layer

  LayerTar control;
  control.file("ok", "fine");
  ASSERT_TRUE(unpack(control).ok());
  EXPECT_EQ(slurp(layer / "ok"), "fine");
}

TEST_F(UnpackTest, AbsoluteEntryIsRefused) {
  fs::path outside = scratch.dir / "abs";
  LayerTar tar;
  tar.file("ok", "fine").file(outside.string(), "owned");
  auto r = unpack(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("absolute path"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(outside));
  EXPECT_TRUE(scratch_entries().empty());
}

TEST_F(UnpackTest, SymlinkNeverRedirectsALaterEntry) {
  fs::path outside = scratch.dir / "outside";
  fs::create_directory(outside);
  LayerTar tar;
  tar.symlink("a", outside.string()).file("a/x", "owned");
  auto r = unpack(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("\"a/x\""), std::string::npos) << r.error().message;
  EXPECT_TRUE(fs::is_empty(outside));

  // Control: the same link alone is kept, verbatim, as a link.
  LayerTar control;
  control.symlink("a", outside.string());
  ASSERT_TRUE(unpack(control).ok());
  EXPECT_TRUE(fs::is_symlink(layer / "a"));
  EXPECT_EQ(fs::read_symlink(layer / "a"), outside);
}

TEST_F(UnpackTest, HardlinksOnlyToRegularFilesOfThisLayer) {
  for (auto build : {+[](LayerTar& t) { t.hardlink("p", "/etc/passwd"); },
                     +[](LayerTar& t) { t.hardlink("p", "../../../../etc/passwd"); },
                     +[](LayerTar& t) { t.symlink("s", "/etc").hardlink("p", "s/passwd"); },
                     +[](LayerTar& t) { t.symlink("l", "/etc/passwd").hardlink("p", "l"); }}) {
    LayerTar tar;
    build(tar);
    auto r = unpack(tar);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("hardlink"), std::string::npos) << r.error().message;
    EXPECT_FALSE(fs::exists(layer));
  }
  LayerTar control;
  control.file("f", "data").hardlink("g", "f");
  ASSERT_TRUE(unpack(control).ok());
  EXPECT_EQ(lstat_of(layer / "f").st_ino, lstat_of(layer / "g").st_ino);
}

TEST_F(UnpackTest, SetuidRootFileBecomesAnUnprivilegedPlainFile) {
  LayerTar tar;
  tar.file("usr/bin/su", "elf", 04755, 0, 0).file("usr/bin/wall", "elf", 02755, 0, 5);
  tar.dir("tmp", 01777).file("far", "x", 0644, 70000, 70000);
  ASSERT_TRUE(unpack(tar).ok());
  struct stat su = lstat_of(layer / "usr/bin/su");
  EXPECT_EQ(su.st_uid, options.id_base);
  EXPECT_EQ(su.st_gid, options.id_base);
  EXPECT_EQ(su.st_mode & 07777, 0755u);  // no S_ISUID on the host's disk
  struct stat wall = lstat_of(layer / "usr/bin/wall");
  EXPECT_EQ(wall.st_mode & 07777, 0755u);  // no S_ISGID
  EXPECT_EQ(wall.st_gid, options.id_base + 5);
  EXPECT_EQ(lstat_of(layer / "tmp").st_mode & 07777, 01777u);  // sticky is harmless and kept
  EXPECT_EQ(lstat_of(layer / "far").st_uid, options.id_base + 65534);
}

TEST_F(UnpackTest, DevicesFifosAreSkipped) {
  LayerTar tar;
  tar.chardev("dev/mem", 1, 1).fifo("pipe").file("kept", "x");
  auto r = unpack(tar);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->skipped, 2u);
  EXPECT_FALSE(fs::exists(layer / "dev/mem"));
  EXPECT_FALSE(fs::exists(layer / "pipe"));
  EXPECT_TRUE(fs::exists(layer / "kept"));
}

TEST_F(UnpackTest, WhiteoutsBecomeOverlayfsWhiteoutsAndOpaqueDirs) {
  LayerTar tar;
  tar.file(".wh.gone", "").dir("d").file("d/.wh..wh..opq", "").file("d/new", "n");
  ASSERT_TRUE(unpack(tar).ok());
  struct stat st = lstat_of(layer / "gone");
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_FALSE(fs::exists(layer / ".wh.gone"));
  char value[4] = {};
  EXPECT_EQ(::getxattr((layer / "d").c_str(), "trusted.overlay.opaque", value, sizeof value), 1);
  EXPECT_EQ(value[0], 'y');
  EXPECT_FALSE(fs::exists(layer / "d/.wh..wh..opq"));

  fs::remove_all(layer);
  LayerTar unknown;
  unknown.file(".wh..wh.other", "");
  auto r = unpack(unknown);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("whiteout"), std::string::npos) << r.error().message;
}

TEST_F(UnpackTest, GzipBombStopsAtTheCapAndLeavesNothing) {
  LayerTar tar(Compression::gzip);
  tar.zeros("a", 3 << 20).zeros("b", 3 << 20).zeros("c", 3 << 20);
  ASSERT_LT(tar.bytes().size(), 64u << 10);  // a small blob...
  options.max_bytes = 8 << 20;               // ...that unpacks past the cap
  auto r = unpack(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::limit_exceeded);
  EXPECT_NE(r.error().message.find("more than 8.0 MiB"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("\"c\""), std::string::npos) << r.error().message;
  EXPECT_TRUE(scratch_entries().empty());

  options.max_bytes = 16 << 20;  // control: the same blob under a larger cap
  auto ok = unpack(tar);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->bytes, (9u << 20) + 3 * kEntryBytes);
}

TEST_F(UnpackTest, EntryCountAndDepthAreBounded) {
  options.max_entries = 10;
  LayerTar many;
  for (int i = 0; i < 11; ++i) many.file("f" + std::to_string(i), "");
  auto r = unpack(many);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::limit_exceeded);
  EXPECT_TRUE(scratch_entries().empty());

  options.max_depth = 4;
  LayerTar deep;
  deep.file("a/b/c/d/e", "");
  EXPECT_FALSE(unpack(deep).ok());
  LayerTar shallow;
  shallow.file("a/b/c/d", "");
  EXPECT_TRUE(unpack(shallow).ok());
}

TEST_F(UnpackTest, RepeatedNamesReplaceAndDirectoriesMerge) {
  LayerTar tar;
  tar.file("x", "file").dir("x").file("x/in", "1");        // a dir replaces a file
  tar.dir("d").file("d/a", "a").dir("d", 0700).file("d/b", "b");  // a dir over a dir merges
  tar.dir("y").file("y/z", "z").file("y", "now a file");    // a file replaces a tree
  tar.file("s", "old").symlink("s", "/etc/passwd");         // a link replaces a file
  ASSERT_TRUE(unpack(tar).ok());
  EXPECT_EQ(slurp(layer / "x/in"), "1");
  EXPECT_TRUE(fs::exists(layer / "d/a"));
  EXPECT_TRUE(fs::exists(layer / "d/b"));
  EXPECT_EQ(lstat_of(layer / "d").st_mode & 07777, 0700u);
  EXPECT_EQ(slurp(layer / "y"), "now a file");
  EXPECT_TRUE(fs::is_symlink(layer / "s"));
}

// The real consumer: overlayfs, mounted as the executor mounts it (as host root), sees the
// whiteout hide the lower file and the opaque directory hide the lower directory's contents.
TEST_F(UnpackTest, OverlayfsHonoursWhiteoutsAndOpaqueDirs) {
  LayerTar lower;
  lower.file("gone", "g").file("kept", "k").dir("d").file("d/old", "o");
  fs::path l1 = scratch.dir / "l1", l2 = scratch.dir / "l2", merged = scratch.dir / "merged";
  unique_fd f1 = lower.fd();
  ASSERT_TRUE(unpack_layer(f1.get(), "", l1, options).ok());
  LayerTar upper;
  upper.file(".wh.gone", "").dir("d").file("d/.wh..wh..opq", "").file("d/new", "n");
  unique_fd f2 = upper.fd();
  ASSERT_TRUE(unpack_layer(f2.get(), "", l2, options).ok());
  fs::create_directory(merged);
  std::string opts = "lowerdir=" + l2.string() + ":" + l1.string();
  ASSERT_EQ(::mount("overlay", merged.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0) << std::strerror(errno);
  bool kept = fs::exists(merged / "kept"), gone = fs::exists(merged / "gone");
  bool old = fs::exists(merged / "d/old"), fresh = fs::exists(merged / "d/new");
  ::umount2(merged.c_str(), MNT_DETACH);
  EXPECT_TRUE(kept);    // control: the lower layer shows through
  EXPECT_FALSE(gone);   // the whiteout hides it
  EXPECT_TRUE(fresh);   // control: the opaque dir's own contents show
  EXPECT_FALSE(old);    // the lower dir's contents do not
}

}  // namespace
}  // namespace boxcar::images

namespace boxcar::images {
namespace {

// A layer of empty directories has no content bytes, but each takes an inode and a block on
// the disk: they count kEntryBytes each against the cap. Control: the same layer, a larger cap.
TEST_F(UnpackTest, EmptyEntriesCountAgainstTheCap) {
  LayerTar tar(Compression::gzip);
  for (int i = 0; i < 200; ++i) tar.dir("d" + std::to_string(i));
  ASSERT_LT(tar.bytes().size(), 64u << 10);
  options.max_bytes = 200 * kEntryBytes / 2;
  auto r = unpack(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::limit_exceeded);
  EXPECT_TRUE(scratch_entries().empty());

  options.max_bytes = 200 * kEntryBytes;
  auto ok = unpack(tar);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->bytes, 200 * kEntryBytes);
}

// The layers of one image share one budget: each fits alone, together they do not. Control:
// the same second layer with a budget of its own.
TEST_F(UnpackTest, LayersOfOneImageShareTheBudget) {
  LayerTar first(Compression::gzip), second(Compression::gzip);
  first.zeros("a", 3 << 20);
  second.zeros("b", 3 << 20);
  std::atomic<uint64_t> image_bytes{0};
  options.max_bytes = 5 << 20;
  options.image_bytes = &image_bytes;
  ASSERT_TRUE(unpack(first).ok());
  fs::rename(layer, scratch.dir / "first");
  auto r = unpack(second);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::limit_exceeded);
  EXPECT_NE(r.error().message.find("the image unpacks to more than 5.0 MiB"), std::string::npos) << r.error().message;

  image_bytes = 0;
  EXPECT_TRUE(unpack(second).ok());
}

// A stop set before unpacking (a cancelled pull) ends it between entries, leaving nothing.
TEST_F(UnpackTest, AStoppedPullStopsUnpacking) {
  LayerTar tar;
  tar.file("a", "x").file("b", "y");
  std::atomic<bool> cancel{true};
  PullStop stop;
  stop.cancel = &cancel;
  options.stop = &stop;
  auto r = unpack(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::conflict);
  EXPECT_TRUE(scratch_entries().empty());
  cancel = false;  // control
  EXPECT_TRUE(unpack(tar).ok());
}

// Directory times used to be kept as a full path per directory entry until the end: a small
// gzip of many deep directories held ~4 KiB of memory each. Now 24 bytes each: measured in a
// child (its peak RSS starts at the fork), 20,000 directories of ~3.8 KiB paths (~76 MiB as
// paths) must not raise it by 32 MiB. Control: the times are still set, deep ones included.
// On a tmpfs: this machine's ext4 takes milliseconds per mkdir, which is not what is measured.
TEST_F(UnpackTest, DeepDirectoryTimesCostNoPathEach) {
  fs::path mem = scratch.dir / "mem";
  fs::create_directories(mem);
  if (::mount("tmpfs", mem.c_str(), "tmpfs", 0, "size=256m") != 0) GTEST_SKIP() << "cannot mount a tmpfs";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mem};
  layer = mem / "layer";
  LayerTar tar(Compression::gzip);
  std::string deep;
  for (int i = 0; i < 15; ++i) deep += (deep.empty() ? "" : "/") + std::string(250, static_cast<char>('a' + i));
  tar.dir(deep);
  constexpr int kDirs = 20'000;
  for (int i = 0; i < kDirs; ++i) tar.dir(deep + "/" + std::to_string(i));
  ASSERT_LT(tar.bytes().size(), 8u << 20);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  if (child == 0) {
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    auto r = unpack(tar);
    ::getrusage(RUSAGE_SELF, &after);
    long grew_kib = r.ok() ? after.ru_maxrss - before.ru_maxrss : -1;
    [[maybe_unused]] auto w = ::write(pipefd[1], &grew_kib, sizeof grew_kib);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  long grew_kib = -2;
  ASSERT_EQ(::read(pipefd[0], &grew_kib, sizeof grew_kib), static_cast<ssize_t>(sizeof grew_kib));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_GE(grew_kib, 0) << "the unpack failed";
  EXPECT_LT(grew_kib, 32 << 10) << "peak RSS grew by " << grew_kib << " KiB";
  EXPECT_EQ(lstat_of(layer / deep / "19999").st_mtim.tv_sec, 1'600'000'000);
  EXPECT_EQ(lstat_of(layer / deep).st_mtim.tv_sec, 1'600'000'000);
}

}  // namespace
}  // namespace boxcar::images

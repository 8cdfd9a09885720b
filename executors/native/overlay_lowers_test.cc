// The two ways lowers reach overlayfs (image_root.h): "lowerdir+" per layer, and the classic
// colon-joined "lowerdir" of kernels before 6.8, forced here, with store-like long paths that
// the classic option could not take as they are (255 bytes) for more than two layers.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "executors/native/image_root.h"

namespace boxcar::executors::native {
namespace {

namespace fs = std::filesystem;

std::string read_in(int root, const std::string& name) {
  int fd = ::openat(root, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<missing>";
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

class OverlayLowers : public ::testing::TestWithParam<LowerdirOption> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/var/lib/boxcar-overlay-lowers-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // 12 layers at paths as long as the store's (<cache>/layers/<64 hex>/fs).
    for (int i = 0; i < 12; ++i) {
      fs::path layer = dir_ / "layers" / (std::string(64, static_cast<char>('a' + i))) / "fs";
      fs::create_directories(layer);
      std::ofstream(layer / "top") << i;
      std::ofstream(layer / ("only-" + std::to_string(i))) << i;
      layers_.push_back(layer);
    }
    fs::create_directories(dir_ / "upper");
    fs::create_directories(dir_ / "work");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  std::vector<fs::path> layers_;  // lowest first
};

TEST_P(OverlayLowers, EveryLayerIsThereAndTheHighestWins) {
  auto mnt = mount_image_layers(layers_, dir_ / "upper", dir_ / "work", GetParam());
  ASSERT_TRUE(mnt.ok()) << mnt.error().message;
  EXPECT_EQ(read_in(mnt->get(), "top"), "11");
  for (int i = 0; i < 12; ++i) EXPECT_EQ(read_in(mnt->get(), "only-" + std::to_string(i)), std::to_string(i));
}

TEST_P(OverlayLowers, TooManyLayersForTheClassicOptionSayWhatToDo) {
  if (GetParam() != LowerdirOption::classic) GTEST_SKIP() << "per layer has no such limit";
  std::vector<fs::path> many;
  for (int i = 0; i < 40; ++i) many.push_back(layers_[static_cast<size_t>(i) % layers_.size()]);
  auto mnt = mount_image_layers(many, dir_ / "upper", dir_ / "work", GetParam());
  ASSERT_FALSE(mnt.ok());
  EXPECT_NE(mnt.error().message.find("kernel of 6.8 or later"), std::string::npos) << mnt.error().message;
}

INSTANTIATE_TEST_SUITE_P(Options, OverlayLowers,
                         ::testing::Values(LowerdirOption::per_layer, LowerdirOption::classic),
                         [](const ::testing::TestParamInfo<LowerdirOption>& p) {
                           return p.param == LowerdirOption::classic ? std::string("classic")
                                                                     : std::string("per_layer");
                         });

}  // namespace
}  // namespace boxcar::executors::native

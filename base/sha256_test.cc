#include "base/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(Sha256, KnownVectorsInPieces) {
  Sha256 empty;
  EXPECT_EQ(empty.hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.update("a");
  abc.update("bc");
  EXPECT_EQ(abc.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(is_sha256_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  EXPECT_FALSE(is_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
  EXPECT_FALSE(is_sha256_hex("abc"));
}

TEST(Sha256, File) {
  std::string path = ::testing::TempDir() + "sha256_test_file";
  std::ofstream(path) << "abc";
  uint64_t size = 0;
  auto digest = sha256_file(path, &size);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(size, 3u);
  std::remove(path.c_str());
  EXPECT_FALSE(sha256_file(path).ok());
}

TEST(Sha256, OfAStringAndOfAnOpenFileFromItsStart) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string path = ::testing::TempDir() + "sha256_test_fd";
  std::ofstream(path) << "abc";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char c;
  ASSERT_EQ(::read(fd, &c, 1), 1);  // the file's offset moved: the digest still starts at 0
  uint64_t size = 0;
  auto digest = sha256_fd(fd, &size);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, sha256_hex("abc"));
  EXPECT_EQ(size, 3u);
  ::close(fd);
  std::remove(path.c_str());
  EXPECT_FALSE(sha256_fd(-1).ok());
}

}  // namespace
}  // namespace boxcar

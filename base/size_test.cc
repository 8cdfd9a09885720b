#include "base/size.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(SizeTest, ParsesBinaryAndDecimalUnits) {
  EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(parse_size("100MB"), 100'000'000ull);
  EXPECT_EQ(parse_size("4096"), 4096ull);
  EXPECT_EQ(parse_size("1.5KiB"), 1536ull);
  EXPECT_EQ(parse_size("1G"), 1ull << 30);
}

TEST(SizeTest, RejectsMalformed) {
  for (const char* bad : {"", "MiB", "-1MiB", "1 MiB", "1XB", "1e9", "99999999999TiB"}) {
    EXPECT_FALSE(parse_size(bad).has_value()) << bad;
  }
}

TEST(SizeTest, Formats) {
  EXPECT_EQ(format_size(17), "17 B");
  EXPECT_EQ(format_size(512ull << 20), "512.0 MiB");
}

}  // namespace
}  // namespace boxcar

#include "base/hex.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(Hex, EncodesEveryByteAsTwoLowercaseDigits) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
  EXPECT_TRUE(is_lower_hex("000fa0ff"));
  EXPECT_FALSE(is_lower_hex("000FA0FF"));
  EXPECT_FALSE(is_lower_hex(""));
  EXPECT_FALSE(is_lower_hex("0g"));
}

}  // namespace
}  // namespace boxcar

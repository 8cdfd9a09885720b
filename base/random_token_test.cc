#include "base/random_token.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(RandomToken, IsHexOfTheAskedLengthAndNeverRepeats) {
  std::string a = random_token().value(), b = random_token().value();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
  EXPECT_EQ(random_token(4).value().size(), 8u);
  EXPECT_EQ(random_bytes(10).value().size(), 10u);
  EXPECT_EQ(random_bytes(0).value(), "");
}

TEST(RandomToken, ConstantTimeEqualComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace boxcar

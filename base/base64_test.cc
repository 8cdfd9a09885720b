#include "base/base64.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(Base64Test, DecodeRoundTripsAndRefusesWhatIsNotBase64) {
  for (std::string bytes : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                            std::string("foobar"), std::string("\xff\x00\x10\x80", 4)}) {
    auto decoded = base64_decode(base64_encode(bytes));
    ASSERT_TRUE(decoded) << base64_encode(bytes);
    EXPECT_EQ(*decoded, bytes);
  }
  EXPECT_FALSE(base64_decode("Zg="));    // not a multiple of 4
  EXPECT_FALSE(base64_decode("Z g=="));  // a space
  EXPECT_FALSE(base64_decode("Z===")); // too much padding
  EXPECT_FALSE(base64_decode("Zg==Zg=="));  // padding before the end
}

}  // namespace
}  // namespace boxcar

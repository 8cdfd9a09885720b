#include "base/utf8.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(Utf8Test, ValidTextPasses) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\n"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x80"));  // é € 🚀
  EXPECT_TRUE(is_valid_utf8(std::string("nul\0inside", 10)));
  EXPECT_EQ(to_valid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
}

TEST(Utf8Test, InvalidBytesAreFoundAndReplaced) {
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("a\x80" "b"));             // a stray continuation byte
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));              // an overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));          // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));      // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));              // cut short
  EXPECT_EQ(to_valid_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(to_valid_utf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace boxcar

#include "base/suggest.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(SuggestTest, Distance) {
  EXPECT_EQ(edit_distance("needs", "neds"), 1u);
  EXPECT_EQ(edit_distance("needs", "nedes"), 1u);  // transposition
  EXPECT_EQ(edit_distance("", "abc"), 3u);
}

TEST(SuggestTest, ClosestWithinLimit) {
  std::vector<std::string> keys = {"name", "needs", "network", "run"};
  EXPECT_EQ(closest_match("neds", keys), "needs");
  EXPECT_EQ(closest_match("rnu", keys), "run");
  EXPECT_FALSE(closest_match("completely", keys).has_value());
}

}  // namespace
}  // namespace boxcar

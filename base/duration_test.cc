#include "base/duration.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(DurationTest, ParsesUnitsAndSequences) {
  EXPECT_EQ(parse_duration("90s"), Millis(90'000));
  EXPECT_EQ(parse_duration("10m"), Millis(600'000));
  EXPECT_EQ(parse_duration("1h30m"), Millis(5'400'000));
  EXPECT_EQ(parse_duration("250ms"), Millis(250));
  EXPECT_EQ(parse_duration("1m30s500ms"), Millis(90'500));
}

TEST(DurationTest, RejectsMalformed) {
  for (const char* bad : {"", "10", "s", "10x", "1.5h", "-5s", "10 s", "h1", "99999999999s"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(DurationTest, Formats) {
  EXPECT_EQ(format_duration(Millis(850)), "850ms");
  EXPECT_EQ(format_duration(Millis(4200)), "4.2s");
  EXPECT_EQ(format_duration(Millis(185'000)), "3m05s");
  EXPECT_EQ(format_duration(Millis(3'720'000)), "1h02m");
}

}  // namespace
}  // namespace boxcar

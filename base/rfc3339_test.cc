#include "base/rfc3339.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(Rfc3339, UtcWithMilliseconds) {
  EXPECT_EQ(format_rfc3339(int64_t{1767322800123}), "2026-01-02T03:00:00.123Z");
  EXPECT_EQ(format_rfc3339(int64_t{5}), "1970-01-01T00:00:00.005Z");
  EXPECT_EQ(format_rfc3339(int64_t{0}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(1767322800123))),
            "2026-01-02T03:00:00.123Z");
}

TEST(Rfc3339, BeforeNineteenSeventyRoundsDown) {
  EXPECT_EQ(format_rfc3339(int64_t{-1}), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(int64_t{-1000}), "1969-12-31T23:59:59.000Z");
}

}  // namespace
}  // namespace boxcar

#include "executors/native/uts.h"

#include <gtest/gtest.h>

namespace boxcar::executors::native {
namespace {

TEST(Hostname, MadeFromTheStepName) {
  EXPECT_EQ(hostname_for("build"), "build");
  EXPECT_EQ(hostname_for("Test (cc=gcc, opt=O2)"), "test-cc-gcc-opt-o2");
  EXPECT_EQ(hostname_for("--"), "sandbox");
  EXPECT_EQ(hostname_for(std::string(100, 'a')).size(), 63u);
}

}  // namespace
}  // namespace boxcar::executors::native

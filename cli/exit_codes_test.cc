#include "cli/exit_codes.h"

#include <gtest/gtest.h>

namespace boxcar::cli {
namespace {

TEST(ExitCodes, EachKindOfErrorHasItsContractCode) {
  EXPECT_EQ(exit_code(ErrorCode::usage), 2);
  EXPECT_EQ(exit_code(ErrorCode::invalid_input), 2);
  EXPECT_EQ(exit_code(ErrorCode::not_found), 2);
  EXPECT_EQ(exit_code(ErrorCode::conflict), 2);
  EXPECT_EQ(exit_code(ErrorCode::limit_exceeded), 2);
  EXPECT_EQ(exit_code(ErrorCode::unavailable), 3);
  EXPECT_EQ(exit_code(Error{"no code given"}), 3) << "an Error of unknown kind is boxcar's fault";
}

TEST(ExitCodes, TheCliAddsTheFlagALibraryErrorIsAbout) {
  Error limit{"resources.memory = 8.0 GiB is over the ceiling of 4.0 GiB", 0,
              ErrorCode::limit_exceeded, "max_memory"};
  EXPECT_EQ(describe(limit), "resources.memory = 8.0 GiB is over the ceiling of 4.0 GiB (raise it with --max-memory)");
  Error file{"cannot read the certificate file /x.pem", 0, ErrorCode::not_found, "tls_cert"};
  EXPECT_EQ(describe(file), "--tls-cert: cannot read the certificate file /x.pem");
  // Control: an error about no setting, or one the CLI has no flag for, reads as it came.
  EXPECT_EQ(describe(Error{"the server went away", 0, ErrorCode::unavailable}), "the server went away");
  EXPECT_EQ(describe(Error{"odd", 0, ErrorCode::usage, "no_such_setting"}), "odd");
}

}  // namespace
}  // namespace boxcar::cli

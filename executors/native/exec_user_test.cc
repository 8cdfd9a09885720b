#include "executors/native/exec_user.h"

#include <gtest/gtest.h>

namespace boxcar::executors::native {
namespace {

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "app:x:1000:1001:App:/home/app:/bin/sh\n"
    "nohome:x:1002:1002::\n"
    "broken:x:notanumber:1\n";
constexpr const char* kGroup =
    "root:x:0:\n"
    "appgroup:x:1001:\n"
    "docker:x:999:app,other\n"
    "wheel:x:10:other,app\n"
    "staff:x:50:\n";

ExecUser resolved(std::string_view spec) {
  ExecUser u;
  std::string error = resolve_user(spec, kPasswd, kGroup, u);
  EXPECT_EQ(error, "") << spec;
  return u;
}

std::string failure(std::string_view spec) {
  ExecUser u;
  return resolve_user(spec, kPasswd, kGroup, u);
}

TEST(ExecUser, NameTakesIdsHomeAndMemberships) {
  ExecUser u = resolved("app");
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 1001u);
  EXPECT_EQ(u.home, "/home/app");
  EXPECT_EQ(u.groups, (std::vector<gid_t>{999, 10}));
}

TEST(ExecUser, NumericUidFindsItsEntryOrStandsAlone) {
  EXPECT_EQ(resolved("1000").home, "/home/app");
  EXPECT_EQ(resolved("1000").gid, 1001u);
  ExecUser bare = resolved("4242");
  EXPECT_EQ(bare.uid, 4242u);
  EXPECT_EQ(bare.gid, 0u);
  EXPECT_EQ(bare.home, "/");
  EXPECT_TRUE(bare.groups.empty());
}

TEST(ExecUser, ExplicitGroupByNumberOrName) {
  ExecUser numeric = resolved("1000:1000");
  EXPECT_EQ(numeric.uid, 1000u);
  EXPECT_EQ(numeric.gid, 1000u);
  EXPECT_EQ(numeric.groups, std::vector<gid_t>{1000});
  ExecUser named = resolved("4242:staff");
  EXPECT_EQ(named.gid, 50u);
  ExecUser both = resolved("app:wheel");
  EXPECT_EQ(both.uid, 1000u);
  EXPECT_EQ(both.gid, 10u);
  EXPECT_EQ(both.groups, std::vector<gid_t>{10});
}

TEST(ExecUser, RootWithOrWithoutAnEntry) {
  EXPECT_EQ(resolved("root").home, "/root");
  ExecUser u;
  EXPECT_EQ(resolve_user("root", "", "", u), "");
  EXPECT_EQ(u.uid, 0u);
  EXPECT_EQ(u.home, "/root");
}

TEST(ExecUser, EmptyHomeFieldMeansSlash) { EXPECT_EQ(resolved("nohome").home, "/"); }

TEST(ExecUser, UnknownNamesFailClearly) {
  EXPECT_EQ(failure("ghost"), "user \"ghost\" not found in /etc/passwd of the image");
  EXPECT_EQ(failure("app:ghosts"), "group \"ghosts\" not found in /etc/group of the image");
  EXPECT_EQ(failure("broken"), "user \"broken\" not found in /etc/passwd of the image");
  EXPECT_NE(failure(":1").find("is not valid"), std::string::npos);
  EXPECT_NE(failure("app:").find("is not valid"), std::string::npos);
  // Out of range for a uid_t: a name, and there is none.
  EXPECT_NE(failure("99999999999").find("not found"), std::string::npos);
}

}  // namespace
}  // namespace boxcar::executors::native

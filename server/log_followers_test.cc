#include "server/log_followers.h"

#include <gtest/gtest.h>

namespace boxcar::server {
namespace {

TEST(LogFollowersTest, CapsPerJobAndPerClientAndGivesPlacesBack) {
  LogFollowers followers(/*max_per_job=*/2, /*max_per_client=*/3);
  LogFollowers::Refusal why;
  auto a1 = followers.admit(1, "10.0.0.1", why);
  auto a2 = followers.admit(1, "10.0.0.2", why);
  ASSERT_TRUE(a1 && a2);
  EXPECT_FALSE(followers.admit(1, "10.0.0.3", why));
  EXPECT_EQ(why.cap, "job");
  EXPECT_NE(why.message.find("--max-followers-per-job"), std::string::npos) << why.message;

  auto b1 = followers.admit(2, "10.0.0.1", why);
  auto c1 = followers.admit(3, "10.0.0.1", why);
  ASSERT_TRUE(b1 && c1);
  EXPECT_FALSE(followers.admit(4, "10.0.0.1", why));  // a fourth job, same client
  EXPECT_EQ(why.cap, "client");
  EXPECT_NE(why.message.find("10.0.0.1"), std::string::npos) << why.message;
  EXPECT_TRUE(followers.admit(4, "10.0.0.9", why));  // another client is not held back

  a1.reset();
  EXPECT_EQ(followers.followers_of_job(1), 1);
  EXPECT_EQ(followers.followers_of_client("10.0.0.1"), 2);
  auto again = followers.admit(1, "10.0.0.3", why);
  EXPECT_TRUE(again);
  EXPECT_EQ(followers.followers_of_job(4), 0);  // refusals took no place
}

TEST(LogFollowersTest, ZeroMeansNoCap) {
  LogFollowers followers(0, 0);
  LogFollowers::Refusal why;
  std::vector<std::unique_ptr<LogFollowers::Slot>> held;
  for (int i = 0; i < 500; ++i) {
    held.push_back(followers.admit(1, "10.0.0.1", why));
    ASSERT_TRUE(held.back());
  }
}

}  // namespace
}  // namespace boxcar::server

#include "agent/daemon/remote_errors.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>

namespace boxcar::agent {
namespace {

namespace asio = boost::asio;

TEST(RemoteErrors, TransportFailuresAreRetried) {
  for (auto ec : {boost::system::error_code(asio::error::connection_refused),
                  boost::system::error_code(asio::error::connection_reset),
                  boost::system::error_code(boost::beast::error::timeout),
                  boost::system::error_code(asio::error::host_not_found)}) {
    EXPECT_EQ(classify(ec, 0).verdict, RemoteVerdict::retry) << ec.message();
  }
  EXPECT_EQ(classify(asio::error::connection_refused, 0).message, "connection refused");
}

TEST(RemoteErrors, StatusTable) {
  boost::system::error_code none;
  EXPECT_EQ(classify(none, 200).verdict, RemoteVerdict::ok);
  EXPECT_EQ(classify(none, 204).verdict, RemoteVerdict::ok);
  EXPECT_EQ(classify(none, 500).verdict, RemoteVerdict::retry);
  EXPECT_EQ(classify(none, 503).verdict, RemoteVerdict::retry);
  EXPECT_EQ(classify(none, 429).verdict, RemoteVerdict::retry);
  EXPECT_EQ(classify(none, 401).verdict, RemoteVerdict::auth_refused);
  EXPECT_EQ(classify(none, 403).verdict, RemoteVerdict::auth_refused);
  EXPECT_EQ(classify(none, 409).verdict, RemoteVerdict::lease_lost);
  EXPECT_EQ(classify(none, 400).verdict, RemoteVerdict::rejected);
  EXPECT_EQ(classify(none, 404).verdict, RemoteVerdict::rejected);
  EXPECT_EQ(classify(none, 302).verdict, RemoteVerdict::rejected);
  EXPECT_EQ(classify(none, 401, "bad token").message,
            "the server refused the agent token (HTTP 401): bad token");
}

TEST(Backoff, GrowsWithJitterAndIsCapped) {
  Backoff b(Millis(100), Millis(1000));
  Millis d0 = b.next(), d1 = b.next(), d2 = b.next();
  EXPECT_GE(d0.count(), 50);
  EXPECT_LE(d0.count(), 100);
  EXPECT_GE(d1.count(), 100);
  EXPECT_LE(d1.count(), 200);
  EXPECT_GE(d2.count(), 200);
  EXPECT_LE(d2.count(), 400);
  for (int i = 0; i < 50; ++i) EXPECT_LE(b.next().count(), 1000);
  b.reset();
  EXPECT_LE(b.next().count(), 100);
  Backoff real;  // the agent's: capped at 30 s
  for (int i = 0; i < 40; ++i) EXPECT_LE(real.next().count(), 30'000);
}

}  // namespace
}  // namespace boxcar::agent

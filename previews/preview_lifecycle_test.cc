// A preview's life through the real proxy: the scheduler publishes an exposed port of a step
// (on the FakeExecutor, whose server is a real loopback listener) and withdraws it when its
// TTL ends. The end-to-end version, with a real server in a real sandbox, is
// tests/cli/preview_test.cc.
#include <gtest/gtest.h>

#include <unistd.h>

#include <future>

#include <boost/asio/io_context.hpp>

#include "agent/scheduler.h"
#include "pipeline/load.h"
#include "previews/preview_proxy.h"
#include "testing/fake_executor.h"
#include "testing/loopback_client.h"
#include "testing/recording_observer.h"

namespace boxcar::agent {
namespace {

using boxcar::testing::FakeCommand;
using boxcar::testing::FakeExecutor;

TEST(PreviewLifecycle, APreviewServesTheStepsPortUntilItsTtlEndsThen404) {
  auto loaded = pipeline::parse_pipeline(
      "version = 1\n[[step]]\nname = \"web\"\nrun = \"serve-web\"\npreview_ttl = \"300ms\"\n"
      "[[step.expose]]\nport = 8080\n",
      ".boxcar.toml");
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors[0].to_string();
  pipeline::ExpandedPipeline expanded = pipeline::expand(*loaded.pipeline);
  pipeline::Plan plan(expanded, {});

  boost::asio::io_context io;
  FakeExecutor fake(io);
  fake.script("serve-web", FakeCommand::server(8080));
  PreviewProxy proxy(io, "localhost");
  ASSERT_TRUE(proxy.listen("127.0.0.1:0").ok());
  boxcar::testing::RecordingObserver observer;
  auto job = std::move(fake.prepare({"job-1", "/nonexistent"})).value();
  SchedulerOptions options;
  options.job_id = "job-1";
  options.previews = &proxy;
  Scheduler scheduler(io, *job, expanded, plan, options, observer);
  std::optional<bool> done;
  scheduler.start([&](bool ok) { done = ok; });
  ASSERT_TRUE(fake.run_until([&] { return done.has_value(); }));
  ASSERT_TRUE(*done);
  ASSERT_EQ(observer.path_urls.size(), 1u);

  // The proxy and the fake run on this thread's io_context: the client runs beside it.
  std::string path = observer.path_urls[0].substr(observer.path_urls[0].find("/preview/"));
  auto get = [&] {
    auto answer = std::async(std::launch::async, [&] {
      int fd = boxcar::testing::connect_from("127.0.0.1", proxy.port());
      std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      if (fd < 0 || ::write(fd, request.data(), request.size()) < 0) return std::string();
      std::string out = boxcar::testing::read_to_end(fd);
      ::close(fd);
      return out;
    });
    EXPECT_TRUE(fake.run_until([&] {
      return answer.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }));
    return answer.get();
  };

  // Control: published, the preview reaches the step's server.
  std::string served = get();
  EXPECT_NE(served.find(" 200 "), std::string::npos) << served;
  EXPECT_NE(served.find("\r\n\r\nfake\n"), std::string::npos) << served;

  // Attack: the same URL once the TTL ended and the preview was withdrawn.
  bool closed = false;
  scheduler.hold_previews([&] { closed = true; });
  ASSERT_TRUE(fake.run_until([&] { return closed; }));
  std::string expired = get();
  EXPECT_NE(expired.find(" 404 "), std::string::npos) << expired;
  EXPECT_EQ(expired.find("fake\n"), std::string::npos) << expired;
  EXPECT_EQ(fake.live_sandboxes(), 0u);
  // Nothing runs the io_context any more: stopped, the proxy's listener closes at once instead
  // of waiting for it.
  io.stop();
}

}  // namespace
}  // namespace boxcar::agent

// ImageFetcher against a registry that accepts connections and never answers (a listening
// socket nobody accepts from: the kernel completes the handshake, the request waits for ever):
// dropping the fetch handle, or the fetcher, ends the pull on its thread at once instead of
// after minutes of per-request timeouts. Observed through the image's lease lock, which a pull
// holds from its start (images/layer_store.h) to its end.
#include "agent/image_fetcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/sha256.h"
#include "base/unique_fd.h"
#include "testing/scratch_dir.h"

namespace boxcar::agent {
namespace {

class ImageFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("DOCKER_CONFIG", "/nonexistent-boxcar-docker-config", 1);
    silent_ = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(silent_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(silent_.get(), 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(silent_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    reference_ = address_ + "/app:1";
  }
  std::unique_ptr<ImageFetcher> make() {
    ImageFetcherOptions o;
    o.store.dir = dir_.dir / "images";
    o.registry.insecure = {address_};
    auto f = ImageFetcher::make(io_, o);
    EXPECT_TRUE(f.ok()) << f.error().message;
    return f.ok() ? std::move(*f) : nullptr;
  }
  // Whether a pull of the reference holds its lease now (a shared flock on its lock file).
  bool pulling() {
    auto path = dir_.dir / "images/locks" / ("image-" + sha256_hex(reference_) + ".lock");
    unique_fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) return false;
    return ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0;
  }
  // Waits (30 s at most: a pull left running would hold for minutes) until pulling() is `want`.
  bool wait_pulling(bool want) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pulling() == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  testing::ScratchDir dir_;
  boost::asio::io_context io_;
  unique_fd silent_;
  std::string address_, reference_;
};

TEST_F(ImageFetcherTest, DroppingTheHandleStopsThePull) {
  auto fetcher = make();
  bool answered = false;
  auto handle = fetcher->fetch({reference_}, [&](RunImages) { answered = true; });
  ASSERT_TRUE(wait_pulling(true)) << "the pull never started";  // control: the probe sees a pull
  handle.reset();  // the run was cancelled
  EXPECT_TRUE(wait_pulling(false)) << "the pull kept running after its handle was dropped";
  io_.poll();
  EXPECT_FALSE(answered);
}

TEST_F(ImageFetcherTest, DestroyingTheFetcherStopsItsPulls) {
  auto fetcher = make();
  auto handle = fetcher->fetch({reference_}, [](RunImages) {});
  ASSERT_TRUE(wait_pulling(true)) << "the pull never started";
  fetcher.reset();  // the agent shuts down; the handle is still held
  EXPECT_TRUE(wait_pulling(false)) << "the pull outlived its fetcher";
}

}  // namespace
}  // namespace boxcar::agent

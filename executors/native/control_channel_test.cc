#include "executors/native/control_channel.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

namespace boxcar::executors::native {
namespace {

TEST(ControlChannel, FieldsRoundTrip) {
  std::string body = Writer(Msg::exec).u64(42).strs({"sh", "-c", std::string("a\0b", 3)}).strs({}).str("dir").data();
  EXPECT_EQ(static_cast<Msg>(body[0]), Msg::exec);
  Reader r(body);
  EXPECT_EQ(r.u64(), 42u);
  EXPECT_EQ(r.strs(), (std::vector<std::string>{"sh", "-c", std::string("a\0b", 3)}));
  EXPECT_TRUE(r.strs().empty());
  EXPECT_EQ(r.str(), "dir");
  EXPECT_TRUE(r.ok());
  r.u64();
  EXPECT_FALSE(r.ok());  // past the end
}

TEST(ControlChannel, TruncatedInputIsRejected) {
  std::string body = Writer(Msg::exec).str("hello").data();
  body.resize(body.size() - 2);
  Reader r(body);
  r.str();
  EXPECT_FALSE(r.ok());
  Reader huge(Writer(Msg::exec).u64(~0ull).data());
  EXPECT_TRUE(huge.strs().empty());
  EXPECT_FALSE(huge.ok());
}

TEST(ControlChannel, MessagesCarryFileDescriptors) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(send_message(sp[0], Writer(Msg::done).u64(7).data(), &p[1], 1), 0);
  std::string body;
  std::vector<int> fds;
  ASSERT_EQ(recv_message(sp[1], body, fds), 0);
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_EQ(Reader(body).u64(), 7u);
  ASSERT_EQ(::write(fds[0], "x", 1), 1);
  char c;
  EXPECT_EQ(::read(p[0], &c, 1), 1);
  ::close(sp[0]);
  EXPECT_EQ(recv_message(sp[1], body, fds), -1);  // end of stream
  for (int fd : {sp[1], p[0], p[1], fds[0]}) ::close(fd);
}

}  // namespace
}  // namespace boxcar::executors::native

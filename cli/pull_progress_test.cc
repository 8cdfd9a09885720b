#include "cli/pull_progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace boxcar::cli {
namespace {

using K = images::PullEvent::Kind;

images::PullEvent ev(K kind, const std::string& layer = "", uint64_t done = 0, uint64_t total = 0) {
  images::PullEvent e{};
  e.kind = kind;
  e.reference = "reg:5000/app:1";
  e.layer = layer;
  e.bytes_done = done;
  e.bytes_total = total;
  return e;
}

std::string print(PullProgressPrinter::Mode mode, const std::vector<images::PullEvent>& events) {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* out = ::open_memstream(&buf, &size);
  {
    PullProgressPrinter p(out, mode);
    for (const auto& e : events) p(e);
  }
  std::fclose(out);
  std::string s(buf, size);
  std::free(buf);
  return s;
}

const std::string kL1 = "sha256:1111111111112222222222";
const std::string kL2 = "sha256:aaaaaaaaaaaabbbbbbbbbb";

std::vector<images::PullEvent> a_pull() {
  return {ev(K::resolving), ev(K::layer_start, kL1, 0, 2 << 20), ev(K::layer_cached, kL2),
          ev(K::layer_progress, kL1, 1 << 20, 2 << 20), ev(K::layer_unpacked, kL1, 2 << 20, 2 << 20), ev(K::done)};
}

TEST(PullProgressTest, PlainLinesWithoutEscapes) {
  std::string s = print(PullProgressPrinter::Mode::plain, a_pull());
  EXPECT_EQ(s,
            "pulling reg:5000/app:1\n111111111111: downloading 2.0 MiB\naaaaaaaaaaaa: already in the cache\n"
            "111111111111: done\n");
}

TEST(PullProgressTest, ATerminalGetsALinePerLayerRedrawnInPlace) {
  std::string s = print(PullProgressPrinter::Mode::terminal, a_pull());
  EXPECT_NE(s.find("\x1b[2K111111111111: downloading 1.0 MiB / 2.0 MiB\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\x1b[2A"), std::string::npos) << s;  // back up over the two layer lines
  // The last drawing: both layers finished.
  std::string tail = s.substr(s.rfind("\x1b[2A"));
  EXPECT_EQ(tail, "\x1b[2A\x1b[2K111111111111: done\n\x1b[2Kaaaaaaaaaaaa: already in the cache\n");
}

TEST(PullProgressTest, JsonIsOneObjectPerEvent) {
  std::string s = print(PullProgressPrinter::Mode::json, {ev(K::layer_progress, kL1, 5, 10)});
  EXPECT_EQ(s, "{\"event\":\"layer_progress\",\"reference\":\"reg:5000/app:1\",\"layer\":\"" + kL1 +
                   "\",\"bytes_done\":5,\"bytes_total\":10}\n");
}

}  // namespace
}  // namespace boxcar::cli

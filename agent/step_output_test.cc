#include "agent/step_output.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace boxcar::agent {
namespace {

using executors::OutputStream;

struct Line {
  size_t step;
  std::string name;
  Timestamp ts;
  std::string text;
  bool cut;
};

// Records every call; step events are not StepOutput's business, so only lines and notices.
class RecordingObserver : public RunObserver {
 public:
  void notice(std::string_view text) override { notices.emplace_back(text); }
  void step_started(size_t, std::string_view, int) override {}
  void step_line(size_t step, std::string_view name, Timestamp ts, std::string_view line,
                 bool cut) override {
    lines.push_back({step, std::string(name), ts, std::string(line), cut});
  }
  void step_finished(size_t, const StepSummary&) override {}
  void artifact(size_t, std::string_view, std::string_view, uint64_t) override {}
  void pipeline_finished(bool, const std::vector<StepSummary>&, Millis) override {}

  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const Line& l : lines) out.push_back(l.text);
    return out;
  }

  std::vector<Line> lines;
  std::vector<std::string> notices;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class StepOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("boxcar_step_output_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  StepOutputOptions options() {
    StepOutputOptions o;
    o.step = 3;
    o.name = "build";
    o.log_file = dir_ / "build.log";
    return o;
  }

  std::filesystem::path dir_;
  RecordingObserver obs_;
};

TEST_F(StepOutputTest, CompleteLinesGoToObserverAndFile) {
  StepOutput out(options(), obs_);
  out.write(OutputStream::out, "a\nbb\nccc");
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"a", "bb"}));
  out.write(OutputStream::out, "c\n");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"a", "bb", "cccc"}));
  EXPECT_EQ(obs_.lines[0].step, 3u);
  EXPECT_EQ(obs_.lines[0].name, "build");
  EXPECT_FALSE(obs_.lines[2].cut);
  EXPECT_EQ(read_file(dir_ / "build.log"), "a\nbb\ncccc\n");
  EXPECT_EQ(out.bytes_seen(), 10u);
  EXPECT_FALSE(out.truncated());
}

TEST_F(StepOutputTest, LinesOfOneWriteShareItsTimestamp) {
  StepOutput out(options(), obs_);
  out.write(OutputStream::out, "1\n2\n3\n");
  out.close();
  ASSERT_EQ(obs_.lines.size(), 3u);
  EXPECT_EQ(obs_.lines[0].ts, obs_.lines[2].ts);
}

TEST_F(StepOutputTest, PartialLastLineIsFlushedAtClose) {
  StepOutput out(options(), obs_);
  out.write(OutputStream::out, "x\ny");
  out.close();
  out.close();  // idempotent
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(read_file(dir_ / "build.log"), "x\ny\n");
}

TEST_F(StepOutputTest, EmptyLinesAreLines) {
  StepOutput out(options(), obs_);
  out.write(OutputStream::out, "\n\na\n");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"", "", "a"}));
}

TEST_F(StepOutputTest, LongLineIsCutAndMemoryStaysBounded) {
  StepOutputOptions o = options();
  o.max_line = 16;
  StepOutput out(o, obs_);
  std::string line;
  for (int i = 0; i < 50; ++i) line += static_cast<char>('a' + i % 26);
  for (size_t pos = 0; pos < line.size(); pos += 7) {
    out.write(OutputStream::out, std::string_view(line).substr(pos, 7));
    EXPECT_LE(out.pending_line_bytes(OutputStream::out), 16u);
  }
  out.write(OutputStream::out, "\nshort\n");
  out.close();
  ASSERT_EQ(obs_.lines.size(), 5u);
  EXPECT_EQ(obs_.lines[0].text, line.substr(0, 16));
  EXPECT_EQ(obs_.lines[1].text, line.substr(16, 16));
  EXPECT_EQ(obs_.lines[2].text, line.substr(32, 16));
  EXPECT_EQ(obs_.lines[3].text, line.substr(48));
  EXPECT_TRUE(obs_.lines[0].cut && obs_.lines[1].cut && obs_.lines[2].cut);
  EXPECT_FALSE(obs_.lines[3].cut);
  EXPECT_EQ(obs_.lines[4].text, "short");
  // The file keeps the line whole, as printed.
  EXPECT_EQ(read_file(o.log_file), line + "\nshort\n");
}

TEST_F(StepOutputTest, LongLineInOneWriteIsCut) {
  StepOutputOptions o = options();
  o.max_line = 4;
  StepOutput out(o, obs_);
  out.write(OutputStream::out, "12345678\nab\n123456789");
  EXPECT_EQ(out.pending_line_bytes(OutputStream::out), 1u);
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"1234", "5678", "ab", "1234", "5678", "9"}));
  std::vector<bool> cuts;
  for (const Line& l : obs_.lines) cuts.push_back(l.cut);
  EXPECT_EQ(cuts, (std::vector<bool>{true, false, false, true, true, false}));
  EXPECT_EQ(read_file(o.log_file), "12345678\nab\n123456789\n");
}

TEST_F(StepOutputTest, LineCompletedAcrossWritesIsCut) {
  StepOutputOptions o = options();
  o.max_line = 4;
  StepOutput out(o, obs_);
  out.write(OutputStream::out, "abc");
  out.write(OutputStream::out, "defghij\n");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"abcd", "efgh", "ij"}));
  EXPECT_EQ(read_file(o.log_file), "abcdefghij\n");
}

TEST_F(StepOutputTest, LimitTruncatesWithOneNotice) {
  StepOutputOptions o = options();
  o.limit = 10;
  StepOutput out(o, obs_);
  out.write(OutputStream::out, "aaaa\nbbbb\ncccc\n");
  EXPECT_TRUE(out.truncated());
  out.write(OutputStream::err, "dddd\n");
  out.close();
  const std::string notice = "boxcar: output truncated after 10 B (20 bytes in total)";
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"aaaa", "bbbb", notice}));
  EXPECT_EQ(out.bytes_seen(), 20u);
  EXPECT_EQ(read_file(o.log_file), "aaaa\nbbbb\n" + notice + "\n");
}

TEST_F(StepOutputTest, TimesIndexHasOneRecordPerWriteWithLines) {
  StepOutput out(options(), obs_);
  out.write(OutputStream::out, "a\nb");   // "a" at offset 0
  out.write(OutputStream::out, "c\nd\n");  // "bc" at 2, "d" at 5
  out.write(OutputStream::out, "e");      // no line completed: no record
  out.close();                             // "e" at 7
  ASSERT_EQ(obs_.texts(), (std::vector<std::string>{"a", "bc", "d", "e"}));
  EXPECT_EQ(read_file(dir_ / "build.log"), "a\nbc\nd\ne\n");

  std::istringstream times(read_file(dir_ / "build.log.times"));
  std::vector<std::pair<uint64_t, int64_t>> records;
  uint64_t offset;
  int64_t ms;
  while (times >> offset >> ms) records.emplace_back(offset, ms);
  ASSERT_EQ(records.size(), 3u);
  auto ms_of = [](Timestamp ts) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(ts.time_since_epoch()).count();
  };
  EXPECT_EQ(records[0], std::make_pair(uint64_t{0}, ms_of(obs_.lines[0].ts)));
  EXPECT_EQ(records[1], std::make_pair(uint64_t{2}, ms_of(obs_.lines[1].ts)));
  EXPECT_EQ(records[2], std::make_pair(uint64_t{7}, ms_of(obs_.lines[3].ts)));
}

TEST_F(StepOutputTest, StdoutAndStderrInterleaveByLine) {
  StepOutput out(options(), obs_);
  out.write(OutputStream::out, "o1\no2-");
  out.write(OutputStream::err, "e1\ne2-");
  out.write(OutputStream::out, "rest\n");
  out.write(OutputStream::err, "rest\n");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"o1", "e1", "o2-rest", "e2-rest"}));
  EXPECT_EQ(read_file(dir_ / "build.log"), "o1\ne1\no2-rest\ne2-rest\n");
}

TEST_F(StepOutputTest, PartialLinesOfBothStreamsAreFlushedAtClose) {
  StepOutput out(options(), obs_);
  out.write(OutputStream::err, "err tail");
  out.write(OutputStream::out, "out tail");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"out tail", "err tail"}));
}

TEST_F(StepOutputTest, MasksSecretsSplitAcrossWritesAndStreams) {
  StepOutputOptions o = options();
  o.secrets = {"hunter2"};
  StepOutput out(o, obs_);
  out.write(OutputStream::out, "pw=hun");
  out.write(OutputStream::err, "ter2 on stderr is not the same stream\n");
  out.write(OutputStream::out, "ter2\nb64=aHVudGVyMg==\n");
  out.write(OutputStream::out, "tail hunte");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"ter2 on stderr is not the same stream",
                                                    "pw=***", "b64=***", "tail hunte"}));
  std::string file = read_file(o.log_file);
  EXPECT_EQ(file.find("hunter2"), std::string::npos);
  EXPECT_EQ(file.find("aHVudGVy"), std::string::npos);
}

TEST_F(StepOutputTest, SecretAtTheEndIsMaskedAtClose) {
  StepOutputOptions o = options();
  o.secrets = {"hunter2"};
  StepOutput out(o, obs_);
  out.write(OutputStream::out, "x hunter2");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"x ***"}));
}

TEST_F(StepOutputTest, WorksWithoutLogFile) {
  StepOutputOptions o = options();
  o.log_file.clear();
  StepOutput out(o, obs_);
  out.write(OutputStream::out, "a\n");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(obs_.notices.empty());
}

TEST_F(StepOutputTest, UnwritableLogFileIsANoticeNotACrash) {
  StepOutputOptions o = options();
  o.log_file = dir_ / "missing" / "build.log";
  StepOutput out(o, obs_);
  out.write(OutputStream::out, "a\n");
  out.close();
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"a"}));
  ASSERT_EQ(obs_.notices.size(), 1u);
  EXPECT_NE(obs_.notices[0].find("cannot write"), std::string::npos);
}

TEST_F(StepOutputTest, DestructorCloses) {
  {
    StepOutput out(options(), obs_);
    out.write(OutputStream::out, "unterminated");
  }
  EXPECT_EQ(obs_.texts(), (std::vector<std::string>{"unterminated"}));
  EXPECT_EQ(read_file(dir_ / "build.log"), "unterminated\n");
}

TEST_F(StepOutputTest, BigOutputThroughTheFileBufferIsKeptWhole) {
  StepOutputOptions o = options();
  StepOutput out(o, obs_);
  std::string chunk;
  for (int i = 0; i < 20000; ++i) chunk += "line " + std::to_string(i) + "\n";
  std::string expected;
  for (int round = 0; round < 5; ++round) {
    out.write(OutputStream::out, chunk);
    expected += chunk;
  }
  out.close();
  EXPECT_EQ(obs_.lines.size(), 100000u);
  EXPECT_EQ(read_file(o.log_file), expected);
}

}  // namespace
}  // namespace boxcar::agent

namespace boxcar::agent {
namespace {

// An observer that does not want lines (a quiet terminal) gets the same log file through the
// bulk path, the cap and masking included.
class QuietObserver : public RecordingObserver {
 public:
  bool wants_lines() const override { return false; }
};

TEST(StepOutputBulkTest, QuietObserverWritesTheSameFile) {
  auto dir = std::filesystem::temp_directory_path() /
             ("boxcar_step_output_bulk_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<std::string> chunks = {"first\nsec", "ond line\nthird\nfour", "th and a s3cret-v", "alue\n",
                                     std::string(300, 'x'), "\nlast without newline"};
  for (uint64_t limit : {uint64_t{1} << 20, uint64_t{40}}) {
    RecordingObserver loud;
    QuietObserver quiet;
    for (RecordingObserver* obs : {static_cast<RecordingObserver*>(&loud),
                                   static_cast<RecordingObserver*>(&quiet)}) {
      StepOutputOptions o;
      o.name = "s";
      o.limit = limit;
      o.max_line = 64;
      o.secrets = {"s3cret-value"};
      o.log_file = dir / (obs == &loud ? "loud.log" : "quiet.log");
      StepOutput out(o, *obs);
      for (const auto& c : chunks) out.write(OutputStream::out, c);
      out.close();
    }
    std::string a = read_file(dir / "loud.log"), b = read_file(dir / "quiet.log");
    EXPECT_EQ(a, b) << "limit " << limit;
    EXPECT_EQ(b.find("s3cret-value"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace boxcar::agent

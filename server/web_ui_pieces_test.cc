// The web UI's pure pieces: log lines with their ANSI colours, and the step graph's columns.
// (The pages themselves are tested in a browser: tests/service/web_ui_test.cc.)
#include <gtest/gtest.h>

#include "server/web_log_html.h"
#include "server/web_step_graph.h"

namespace boxcar::server {
namespace {

TEST(WebLogHtml, SgrColoursAndBoldBecomeClassesEverythingElseIsDropped) {
  auto lines = log_lines("plain \x1b[1;31mred bold\x1b[0m after\n\x1b[38;5;208mX\x1b[92mY\x1b[4mZ\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], (LogLine{{"", "plain "}, {"b f1", "red bold"}, {"", " after"}}));
  // 256 colours dropped with their arguments; bright green; underline dropped (same style).
  EXPECT_EQ(lines[1], (LogLine{{"", "X"}, {"f10", "YZ"}}));
  EXPECT_EQ(line_html(lines[0]), "plain <span class=\"b f1\">red bold</span> after\n");
}

TEST(WebLogHtml, MarkupAndControlSequencesStayText) {
  auto lines = log_lines("<script>alert(1)</script> \x1b]0;title\x07 \x1b[2J<img src=x onerror=y>");
  ASSERT_EQ(lines.size(), 1u);
  std::string html = line_html(lines[0]);
  EXPECT_EQ(html.find('<'), std::string::npos) << html;  // no element at all
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << html;
  EXPECT_NE(html.find("\\x1b]0;title\\x07"), std::string::npos) << html;  // shown, not obeyed
  EXPECT_NE(html.find("\\x1b[2J"), std::string::npos) << html;
  EXPECT_EQ(html.find('\x1b'), std::string::npos);
}

TEST(WebStepGraph, StepsStandRightOfWhatTheyNeed) {
  std::vector<StepRecord> steps(5);
  steps[0].name = "test";
  steps[0].needs = {"build"};
  steps[1].name = "build";
  steps[2].name = "lint";
  steps[3].name = "deploy";
  steps[3].needs = {"test", "lint", "missing"};
  steps[4].name = "loop";
  steps[4].needs = {"loop"};
  auto columns = step_columns(steps);
  using C = std::vector<std::vector<size_t>>;
  EXPECT_EQ(columns, (C{{1, 2, 4}, {0}, {3}}));
  steps[1].needs = {"deploy"};  // a cycle: it ends, every step still shown once
  columns = step_columns(steps);
  size_t shown = 0;
  for (const auto& c : columns) shown += c.size();
  EXPECT_EQ(shown, steps.size());
}

TEST(WebStepGraph, AChainReportedBackwardsGetsAColumnPerStep) {
  // The agent reports steps in any order: a chain of n reported last-first is n columns.
  const size_t n = 2000;
  std::vector<StepRecord> steps(n);
  for (size_t i = 0; i < n; ++i) {
    steps[i].name = "s" + std::to_string(i);
    if (i + 1 < n) steps[i].needs = {"s" + std::to_string(i + 1)};
  }
  auto columns = step_columns(steps);
  ASSERT_EQ(columns.size(), n);
  EXPECT_EQ(columns.front(), std::vector<size_t>{n - 1});
  EXPECT_EQ(columns.back(), std::vector<size_t>{0});
}

}  // namespace
}  // namespace boxcar::server

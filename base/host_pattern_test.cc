#include "base/host_pattern.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

std::string problem(std::string_view text) {
  auto p = parse_host_pattern(text);
  return p.ok() ? "" : p.error().message;
}

TEST(HostPattern, NamesWildcardsAndPorts) {
  auto p = parse_host_pattern("Registry.NPMjs.org.").value();
  EXPECT_EQ(p.name, "registry.npmjs.org");
  EXPECT_FALSE(p.port);
  auto w = parse_host_pattern("*.pythonhosted.org").value();
  EXPECT_TRUE(w.wildcard());
  auto g = parse_host_pattern("github.com:443").value();
  EXPECT_EQ(g.port, 443);
  EXPECT_EQ(g.text(), "github.com:443");
}

TEST(HostPattern, WildcardsMatchEveryDepthBelowButNotTheDomainItself) {
  auto w = parse_host_pattern("*.pythonhosted.org").value();
  EXPECT_TRUE(host_pattern_matches(w, "files.pythonhosted.org"));
  EXPECT_TRUE(host_pattern_matches(w, "A.B.PythonHosted.org."));
  EXPECT_FALSE(host_pattern_matches(w, "pythonhosted.org"));
  EXPECT_FALSE(host_pattern_matches(w, "evilpythonhosted.org"));
  EXPECT_FALSE(host_pattern_matches(w, "pythonhosted.org.evil.com"));
  auto exact = parse_host_pattern("github.com").value();
  EXPECT_TRUE(host_pattern_matches(exact, "GitHub.com"));
  EXPECT_FALSE(host_pattern_matches(exact, "api.github.com"));
  EXPECT_FALSE(host_pattern_matches(exact, "github.com.evil.com"));
}

TEST(HostPattern, BadPatternsSayWhatIsWrong) {
  EXPECT_NE(problem("github.com:0").find("1..65535"), std::string::npos);
  EXPECT_NE(problem("github.com:99999").find("1..65535"), std::string::npos);
  EXPECT_NE(problem("github.com:").find("1..65535"), std::string::npos);
  EXPECT_NE(problem("10.0.0.5").find("--egress-allow"), std::string::npos);
  EXPECT_NE(problem("[::1]:443").find("--egress-allow"), std::string::npos);
  EXPECT_NE(problem("fd00::1").find("--egress-allow"), std::string::npos);
  EXPECT_NE(problem("*.com").find("two labels"), std::string::npos);
  EXPECT_NE(problem("a.*.com").find("first label"), std::string::npos);
  EXPECT_NE(problem("*").find("first label"), std::string::npos);
  EXPECT_NE(problem("a..b").find("empty label"), std::string::npos);
  EXPECT_NE(problem("exa mple.com").find("character ' '"), std::string::npos);
  EXPECT_NE(problem(std::string(64, 'a') + ".com").find("63"), std::string::npos);
  EXPECT_NE(problem("-a.com").find("'-'"), std::string::npos);
  EXPECT_EQ(problem(""), "\"\": the name is empty");
}

}  // namespace
}  // namespace boxcar

#include "protocol/json_reader.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace boxcar::protocol {
namespace {

namespace json = boost::json;

TEST(JsonReaderTest, ReadsPresentFieldsAndKeepsDefaultsForMissingOnes) {
  json::value v = json::parse(R"({"s": "x", "n": 5, "b": true, "env": {"K": "V"}, "z": null})");
  std::string s, missing = "default";
  int n = 0;
  bool b = false;
  std::map<std::string, std::string> env;
  std::optional<int> z = 3;
  JsonReader in(v);
  in.required("s", s).required("n", n).optional("b", b).optional("env", env);
  in.optional("missing", missing).optional("z", z);
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(s, "x");
  EXPECT_EQ(n, 5);
  EXPECT_TRUE(b);
  EXPECT_EQ(env.at("K"), "V");
  EXPECT_EQ(missing, "default");
  EXPECT_EQ(z, 3);  // null leaves an optional field alone
}

TEST(JsonReaderTest, FirstErrorWins) {
  json::value v = json::parse(R"({"a": 1})");
  std::string a, b;
  JsonReader in(v);
  in.required("a", a).required("b", b);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.error().message, "\"a\": expected a string, got an integer");
}

TEST(JsonReaderTest, MapValuesMustBeStrings) {
  json::value v = json::parse(R"({"env": {"A": 1}})");
  std::map<std::string, std::string> env;
  JsonReader in(v);
  in.optional("env", env);
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.error().message, "\"env.A\": expected a string, got an integer");
}

TEST(JsonReaderTest, IntegersAreCheckedForRange) {
  json::value v = json::parse(R"({"n": 99999999999, "d": 1.5})");
  int n = 0;
  JsonReader in(v);
  in.required("n", n);
  EXPECT_FALSE(in.ok());
  int64_t d = 0;
  JsonReader in2(v);
  in2.required("d", d);
  EXPECT_EQ(in2.error().message, "\"d\": expected an integer, got a number");
}

TEST(JsonReaderTest, AnUnknownFieldIsAnErrorWithDidYouMean) {
  auto v = parse_json(R"({"argv": ["true"], "timeot_ms": 5})");
  ASSERT_TRUE(v.ok());
  JsonReader in(*v);
  in.known({"argv", "command", "timeout_ms"});
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.error().message, "unknown field \"timeot_ms\" (did you mean \"timeout_ms\"?)");
  EXPECT_EQ(in.error_field(), "timeot_ms");
  JsonReader far(*v);
  far.known({"argv", "zzz"});
  EXPECT_EQ(far.error().message, "unknown field \"timeot_ms\" (known fields: argv zzz)");
  JsonReader fine(*v);
  fine.known({"argv", "timeot_ms"});
  EXPECT_TRUE(fine.ok());  // control
}

TEST(JsonReaderTest, ParseJsonNeverThrows) {
  EXPECT_FALSE(parse_json("{").ok());
  EXPECT_FALSE(parse_json("").ok());
  EXPECT_TRUE(parse_json("[1, 2]").ok());
}

}  // namespace
}  // namespace boxcar::protocol

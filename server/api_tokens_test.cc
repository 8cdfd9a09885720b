#include "server/api_tokens.h"

#include <gtest/gtest.h>

#include "base/sha256.h"

namespace boxcar::server {
namespace {

const std::string kSecretSha = sha256_hex("s3cret");

TEST(ApiTokens, ParsesNamesDigestsAndScopes) {
  auto tokens = parse_api_tokens("[[token]]\nname = \"bot\"\nsha256 = \"" + kSecretSha +
                                     "\"\nscopes = [\"read\", \"write\"]\n"
                                     "[[token]]\nname = \"ops\"\nsha256 = \"" + sha256_hex("x") +
                                     "\"\nscopes = [\"admin\"]\n",
                                 "tokens.toml");
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  ASSERT_EQ(tokens->size(), 2u);
  const ApiToken* bot = find_api_token(*tokens, "s3cret");
  ASSERT_NE(bot, nullptr);
  EXPECT_EQ(bot->name, "bot");
  EXPECT_TRUE(bot->allows(Scope::read));
  EXPECT_TRUE(bot->allows(Scope::write));
  EXPECT_FALSE(bot->allows(Scope::admin));
  EXPECT_FALSE(bot->allows(Scope::sandboxes));
  EXPECT_EQ(find_api_token(*tokens, "x")->name, "ops");
  EXPECT_TRUE(find_api_token(*tokens, "x")->allows(Scope::sandboxes));
  EXPECT_EQ(find_api_token(*tokens, "s3cre"), nullptr);
  EXPECT_EQ(find_api_token(*tokens, ""), nullptr);
}

TEST(ApiTokens, ReadDoesNotImplyWrite) {
  ApiToken reader{"r", kSecretSha, static_cast<unsigned>(Scope::read), std::nullopt};
  EXPECT_TRUE(reader.allows(Scope::read));
  EXPECT_FALSE(reader.allows(Scope::write));
  EXPECT_FALSE(reader.allows(Scope::admin));
}

TEST(ApiTokens, ErrorsPointAtTheLine) {
  struct Case {
    std::string text, want;
  } cases[] = {
      {"[[token]]\nname = \"a\"\nsha256 = \"" + kSecretSha + "\"\nscopes = [\"raed\"]\n",
       "t.toml:4:11: token \"a\": unknown scope \"raed\" (did you mean \"read\"?)"},
      {"[[token]]\nname = \"a\"\nsha256 = \"abc\"\nscopes = [\"read\"]\n",
       "t.toml:3:10: token \"a\": sha256 must be 64 hex digits"},
      {"[[token]]\nname = \"a\"\nsha = \"" + kSecretSha + "\"\n", "t.toml:3:7: unknown key \"sha\""},
      {"[[token]]\nsha256 = \"" + kSecretSha + "\"\nscopes = [\"read\"]\n", "t.toml:1:1: a [[token]] needs name"},
      // "*" is how the server tells an agent "any owner": never a token's name.
      {"[[token]]\nname = \"*\"\nsha256 = \"" + kSecretSha + "\"\nscopes = [\"sandboxes\"]\n",
       "t.toml:1:1: token name \"*\": use at most 64 letters, digits and _ . - @"},
      {"[[token]]\nname = \"a\"\nsha256 = \"" + kSecretSha + "\"\n", "needs scopes"},
      {"[[token]]\nname = \"a\"\nsha256 = \"" + kSecretSha + "\"\nscopes = [\"read\"]\n"
       "[[token]]\nname = \"a\"\nsha256 = \"" + sha256_hex("y") + "\"\nscopes = [\"read\"]\n",
       "t.toml:5:1: two tokens are named \"a\""},
      {"name = \"a\"\n", "t.toml:1:8: unknown key \"name\""},
      {"[[token]\n", "t.toml:1:"},
      {"", "t.toml: no [[token]] tables"},
  };
  for (const auto& c : cases) {
    auto r = parse_api_tokens(c.text, "t.toml");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().message.find(c.want), std::string::npos) << r.error().message;
  }
}

TEST(ApiTokens, AMissingFileSaysWhich) {
  auto r = load_api_tokens("/nonexistent/tokens.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/tokens.toml"), std::string::npos);
}

}  // namespace
}  // namespace boxcar::server

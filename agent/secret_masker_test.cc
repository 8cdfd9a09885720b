#include "agent/secret_masker.h"

#include <gtest/gtest.h>

#include <random>

#include "base/base64.h"

namespace boxcar::agent {
namespace {

std::string mask_all(const std::vector<std::string>& secrets, std::string_view text) {
  SecretMasker m(secrets);
  std::string out;
  m.write(text, out);
  m.flush(out);
  return out;
}

// The specification, by brute force: every byte inside an occurrence of a pattern is covered,
// and each run of covered bytes becomes one "***".
std::string reference_mask(const std::vector<std::string>& secrets, std::string_view text) {
  std::vector<std::string> patterns;
  for (const std::string& s : secrets) {
    if (s.size() < 3) continue;
    std::string b64 = base64_encode(s);
    patterns.push_back(s);
    patterns.push_back(b64);
    patterns.push_back(b64.substr(0, b64.find('=')));
    for (size_t shift = 0; shift < 3; ++shift) {
      std::string shifted = base64_encode(std::string(shift, '\0') + s);
      size_t first = (8 * shift + 5) / 6, last = (8 * (shift + s.size())) / 6;
      if (last > first && last - first >= 8) patterns.push_back(shifted.substr(first, last - first));
    }
  }
  std::vector<bool> covered(text.size());
  for (const std::string& p : patterns) {
    for (size_t i = 0; i + p.size() <= text.size(); ++i) {
      if (text.substr(i, p.size()) == p) {
        for (size_t k = i; k < i + p.size(); ++k) covered[k] = true;
      }
    }
  }
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!covered[i]) out += text[i];
    else if (i == 0 || !covered[i - 1]) out += "***";
  }
  return out;
}

TEST(SecretMaskerTest, NoSecretsIsInactiveAndPassesThrough) {
  SecretMasker m(std::vector<std::string>{});
  EXPECT_FALSE(m.active());
  std::string out;
  m.write("hello\n", out);
  m.flush(out);
  EXPECT_EQ(out, "hello\n");
}

TEST(SecretMaskerTest, IgnoresEmptyAndShortSecrets) {
  SecretMasker m({"", "a", "ab"});
  EXPECT_FALSE(m.active());
  EXPECT_EQ(mask_all({"", "ab"}, "a b ab abc"), "a b ab abc");
}

TEST(SecretMaskerTest, MasksValueAndBase64Forms) {
  // base64("hunter2") = "aHVudGVyMg==".
  EXPECT_EQ(mask_all({"hunter2"}, "pw=hunter2\n"), "pw=***\n");
  EXPECT_EQ(mask_all({"hunter2"}, "auth aHVudGVyMg== end"), "auth *** end");
  EXPECT_EQ(mask_all({"hunter2"}, "auth aHVudGVyMg end"), "auth *** end");
  EXPECT_EQ(mask_all({"hunter2"}, "hunter hunter2hunter2"), "hunter ***");
}

// The secret inside a longer base64 text, at each of the three offsets of a 3-byte group.
TEST(SecretMaskerTest, MasksTheSecretInsideLongerBase64) {
  const std::string secret = "GITSECRET-abcdef";
  for (const std::string& prefix : {std::string("user:"), std::string("user"), std::string("use"),
                                    std::string("{\"auth\":\"")}) {
    std::string b64 = base64_encode(prefix + secret + "\"}");
    std::string out = mask_all({secret}, b64);
    // Nothing that decodes back to the secret survives: the masked text no longer holds the
    // characters that carry the secret's bytes.
    EXPECT_NE(out, b64) << prefix;
    EXPECT_NE(out.find("***"), std::string::npos) << prefix << " " << out;
    std::string core = base64_encode(prefix + secret).substr(((prefix.size() * 8) + 5) / 6, 16);
    EXPECT_EQ(out.find(core), std::string::npos) << prefix << " " << out;
  }
  // Unrelated base64 stays as it is.
  std::string other = base64_encode("nothing to hide here, really");
  EXPECT_EQ(mask_all({secret}, other), other);
}

TEST(SecretMaskerTest, MasksSecretSplitAcrossWrites) {
  SecretMasker m({"password123"});
  std::string out;
  m.write("login pass", out);
  EXPECT_EQ(out, "login ");
  EXPECT_EQ(m.held_back(), 4u);
  m.write("word1", out);
  EXPECT_EQ(out, "login ");
  m.write("23 done\n", out);
  EXPECT_EQ(out, "login *** done\n");
  EXPECT_EQ(m.held_back(), 0u);
}

TEST(SecretMaskerTest, MasksSecretFedByteByByte) {
  SecretMasker m({"s3cr3t"});
  std::string in = "a s3cr3t b s3cr3s3cr3t c";
  std::string out;
  for (char c : in) m.write(std::string_view(&c, 1), out);
  m.flush(out);
  EXPECT_EQ(out, "a *** b s3cr3*** c");
}

TEST(SecretMaskerTest, HoldsBackOnlyWhatCouldBecomeASecret) {
  SecretMasker m({"abab"});
  std::string out;
  m.write("xyz", out);
  EXPECT_EQ(out, "xyz");
  m.write("aba", out);  // "aba" and "a" could both grow into "abab": keep the longer
  EXPECT_EQ(out, "xyz");
  EXPECT_EQ(m.held_back(), 3u);
  m.write("c", out);
  EXPECT_EQ(out, "xyzabac");
  m.write("ab", out);
  m.flush(out);
  EXPECT_EQ(out, "xyzabacab");
}

TEST(SecretMaskerTest, OverlappingAndAdjacentMatchesBecomeOneMask) {
  EXPECT_EQ(mask_all({"abcd", "cdef"}, "xabcdefx"), "x***x");
  EXPECT_EQ(mask_all({"abc"}, "abcabc-abc"), "***-***");
  EXPECT_EQ(mask_all({"aaa"}, "baaaaab"), "b***b");
}

TEST(SecretMaskerTest, LongestPatternWinsAtAPosition) {
  EXPECT_EQ(mask_all({"abc", "abcdef"}, "abcdefg abcx"), "***g ***x");
}

TEST(SecretMaskerTest, MaskSpanningWritesIsNotRepeated) {
  SecretMasker m({"abcd", "cdef"});
  std::string out;
  m.write("xabcd", out);  // "abcd" is complete, but "cd" may grow into "cdef"
  m.write("efx", out);
  m.flush(out);
  EXPECT_EQ(out, "x***x");
}

TEST(SecretMaskerTest, MultiLineSecretIsAlsoMaskedLineByLine) {
  std::string key = "-----BEGIN KEY-----\r\nMIIEpAIBAAKCAQEA\r\n-----END KEY-----";
  std::string out = mask_all({key}, "first: MIIEpAIBAAKCAQEA\nall: " + key + "\n");
  EXPECT_EQ(out, "first: ***\nall: ***\n");
}

TEST(SecretMaskerTest, FlushEmitsHeldBytes) {
  SecretMasker m({"secret"});
  std::string out;
  m.write("the secr", out);
  EXPECT_EQ(out, "the ");
  m.flush(out);
  EXPECT_EQ(out, "the secr");
}

// Random text over a tiny alphabet (so near-misses and overlaps are common), secrets inserted
// at random places, fed in random chunk sizes: the result equals the one-shot brute force
// and never shows a secret.
void property_test(const std::vector<std::string>& secrets, std::string_view alphabet,
                   uint32_t seed, size_t max_text = 300, size_t max_chunk = 12, int iters = 400) {
  std::mt19937 rng(seed);
  std::vector<std::string> inserts;
  for (const std::string& s : secrets) {
    inserts.push_back(s);
    inserts.push_back(base64_encode(s));
  }
  for (int iter = 0; iter < iters; ++iter) {
    std::string text;
    size_t len = rng() % max_text;
    while (text.size() < len) {
      if (rng() % 8 == 0) {
        const std::string& s = inserts[rng() % inserts.size()];
        text += rng() % 3 == 0 ? s.substr(0, rng() % s.size()) : s;  // sometimes a near miss
      } else {
        text += alphabet[rng() % alphabet.size()];
      }
    }
    std::string expected = reference_mask(secrets, text);
    ASSERT_EQ(mask_all(secrets, text), expected) << "text: " << text;

    SecretMasker m(secrets);
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t n = std::min<size_t>(text.size() - pos, rng() % max_chunk);
      m.write(std::string_view(text).substr(pos, n), out);
      pos += n;
    }
    m.flush(out);
    ASSERT_EQ(out, expected) << "text: " << text;
    for (const std::string& s : secrets) {
      ASSERT_EQ(out.find(s), std::string::npos) << "text: " << text;
      ASSERT_EQ(out.find(base64_encode(s)), std::string::npos) << "text: " << text;
    }
  }
}

TEST(SecretMaskerTest, PropertyOneFirstByte) {
  property_test({"abab", "abba"}, "ab\n", 1);
}

TEST(SecretMaskerTest, PropertyFewFirstBytes) {
  property_test({"abcab", "bca", "cabc"}, "abc", 2);
}

TEST(SecretMaskerTest, PropertyManyFirstBytes) {
  property_test({"xyz", "hunter2", "aaa", "p4ss", "qq\nq"}, "axyzhunter2p4sq\n", 3);
}

// Long texts and chunks, so the 64-byte block filter does most of the scanning.
TEST(SecretMaskerTest, PropertyLongChunks) {
  property_test({"abcab", "bca", "cabc", "xyzzy-long-secret"}, "abcxyz-\n", 4, 5000, 2000, 100);
}

TEST(SecretMaskerTest, PropertyManySeeds) {
  for (uint32_t seed = 10; seed < 20; ++seed) property_test({"aab", "abaab", "ba="}, "ab=", seed);
}

}  // namespace
}  // namespace boxcar::agent

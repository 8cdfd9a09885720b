#include "server/secret_box.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "testing/scratch_dir.h"

namespace boxcar::server {
namespace {

TEST(SecretBox, OpensOnlyWhatWasSealedForThatScopeAndName) {
  SecretBox box(std::string(32, 'k'));
  auto sealed = box.seal("https://x/r.git", "TOKEN", "s3cret value");
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(sealed->nonce.size(), kSecretNonceBytes);
  EXPECT_EQ(sealed->ciphertext.find("s3cret"), std::string::npos);
  // Control: the same scope and name open it.
  auto opened = box.open("https://x/r.git", "TOKEN", *sealed);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(*opened, "s3cret value");
  // Each write has a fresh nonce.
  EXPECT_NE(box.seal("https://x/r.git", "TOKEN", "s3cret value")->nonce, sealed->nonce);

  // Attacks: moved to another name, another repository, server-wide; another key; altered.
  for (auto [scope, name] : {std::pair{"https://x/r.git", "OTHER"}, std::pair{"https://x/fork.git", "TOKEN"},
                             std::pair{"", "TOKEN"}}) {
    auto moved = box.open(scope, name, *sealed);
    ASSERT_FALSE(moved) << scope << " " << name;
    EXPECT_NE(moved.error().message.find("does not decrypt"), std::string::npos);
    EXPECT_NE(moved.error().message.find("boxcar secret set " + std::string(name)), std::string::npos);
  }
  EXPECT_FALSE(SecretBox(std::string(32, 'x')).open("https://x/r.git", "TOKEN", *sealed));
  SealedSecret altered = *sealed;
  altered.ciphertext[0] ^= 1;
  EXPECT_FALSE(box.open("https://x/r.git", "TOKEN", altered));
  EXPECT_FALSE(box.open("https://x/r.git", "TOKEN", SealedSecret{"short", "x"}));
}

TEST(SecretBox, KeyFileIsMadeOnceAndCheckedAtEveryStart) {
  testing::ScratchDir dir;
  auto file = dir.dir / "secrets.key";
  auto made = load_secrets_key(file, true);
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_TRUE(made->created);
  EXPECT_EQ(made->key.size(), kSecretKeyBytes);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = load_secrets_key(file, true);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->key, made->key);

  // Attack: readable by others: refused, saying how to fix.
  ::chmod(file.c_str(), 0644);
  auto open_to_all = load_secrets_key(file, true);
  ASSERT_FALSE(open_to_all);
  EXPECT_NE(open_to_all.error().message.find("chmod 600"), std::string::npos);
  ::chmod(file.c_str(), 0600);
  // Attack: the wrong size.
  { std::ofstream(file) << "abcdef\n"; }
  auto wrong = load_secrets_key(file, true);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("not a 32-byte key"), std::string::npos);
  EXPECT_NE(wrong.error().message.find("openssl rand -hex 32"), std::string::npos);
  // A given file that does not exist is not made.
  EXPECT_FALSE(load_secrets_key(dir.dir / "missing.key", false));
}

}  // namespace
}  // namespace boxcar::server

// SecretBox: the encryption of secrets kept by the server (AES-256-GCM through OpenSSL's EVP),
// and the key file it is opened with. Each value is sealed with a fresh random 96-bit nonce and
// bound to its scope and name as additional authenticated data, so a ciphertext copied to
// another name or repository, or read under another key, fails to open instead of yielding a
// value.
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"

namespace boxcar::server {

inline constexpr size_t kSecretKeyBytes = 32;
inline constexpr size_t kSecretNonceBytes = 12;
inline constexpr size_t kMaxSecretValueBytes = 64 << 10;  // larger values get 413

struct SealedSecret {
  std::string nonce;       // kSecretNonceBytes
  std::string ciphertext;  // the value's length + a 16-byte tag
};

class SecretBox {
 public:
  // `key` is kSecretKeyBytes raw bytes (load_secrets_key checks it).
  explicit SecretBox(std::string key) : key_(std::move(key)) {}

  Result<SealedSecret> seal(const std::string& scope, const std::string& name,
                            const std::string& value) const;
  // An Error (never a crash) when the ciphertext was not sealed under this key for this
  // scope and name, or was altered.
  Result<std::string> open(const std::string& scope, const std::string& name,
                           const SealedSecret& sealed) const;

 private:
  std::string key_;
};

struct SecretsKey {
  std::string key;      // kSecretKeyBytes raw bytes
  bool created = false; // made now (the default file did not exist)
};

// The key in `file`: 64 hex digits (a trailing newline allowed) or 32 raw bytes. With `create`,
// a missing file is made 0600 with a fresh key from the CSPRNG. Refused, saying how to fix it:
// a file other users may read or write, one of another size, a link or not a regular file.
Result<SecretsKey> load_secrets_key(const std::filesystem::path& file, bool create);

}  // namespace boxcar::server

#include "server/secret_box.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "base/random_token.h"

namespace boxcar::server {

namespace {

constexpr size_t kTagBytes = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// Scope and name, unambiguously joined: neither holds a NUL byte.
std::string additional_data(const std::string& scope, const std::string& name) {
  return "boxcar-secret:" + scope + std::string(1, '\0') + name;
}

const unsigned char* bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string hex_decoded(const std::string& text) {
  std::string out;
  if (text.size() % 2 != 0) return out;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

constexpr const char* kHowToMake =
    " (a key is 64 hex digits, e.g. `openssl rand -hex 32 > FILE && chmod 600 FILE`; without "
    "--secrets-key-file, serve makes <data>/secrets.key itself; secrets stored under an earlier "
    "key stay unreadable without it)";

}  // namespace

Result<SealedSecret> SecretBox::seal(const std::string& scope, const std::string& name,
                                     const std::string& value) const {
  auto nonce = random_bytes(kSecretNonceBytes);
  if (!nonce) return nonce.error();
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string aad = additional_data(scope, name);
  std::string out(value.size() + kTagBytes, '\0');
  int len = 0, tail = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kSecretNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(*nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &len, bytes(value), static_cast<int>(value.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + len, &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, o + value.size()) != 1) {
    return Error{"cannot encrypt secret " + name + " (OpenSSL AES-256-GCM failed)"};
  }
  return SealedSecret{std::move(*nonce), std::move(out)};
}

Result<std::string> SecretBox::open(const std::string& scope, const std::string& name,
                                    const SealedSecret& sealed) const {
  std::string where = "secret " + name + (scope.empty() ? " (server-wide)" : " of " + scope);
  if (sealed.nonce.size() != kSecretNonceBytes || sealed.ciphertext.size() < kTagBytes) {
    return Error{where + " is damaged in the store: set it again"};
  }
  size_t n = sealed.ciphertext.size() - kTagBytes;
  std::string aad = additional_data(scope, name);
  std::string out(n, '\0');
  std::string tag = sealed.ciphertext.substr(n);
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0, tail = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kSecretNonceBytes, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(sealed.nonce)) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), o, &len, bytes(sealed.ciphertext), static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), o + len, &tail) == 1;
  if (!ok) {
    return Error{where + " does not decrypt with this server's secrets key (it was stored under "
                 "another key, or moved or altered in the database): restore the key file it "
                 "was stored under, or set it again with `boxcar secret set " + name +
                 (scope.empty() ? "" : " --repo " + scope) + "`"};
  }
  return out;
}

Result<SecretsKey> load_secrets_key(const std::filesystem::path& file, bool create) {
  std::string path = file.string();
  if (create) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      auto key = random_bytes(kSecretKeyBytes);
      std::string text;
      static const char* kDigits = "0123456789abcdef";
      if (key) {
        for (unsigned char c : *key) {
          text += kDigits[c >> 4];
          text += kDigits[c & 15];
        }
        text += '\n';
      }
      bool written = key && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                     ::fsync(fd) == 0;
      int err = errno;
      ::close(fd);
      if (!written) {
        ::unlink(path.c_str());
        if (!key) return key.error();
        return Error{"cannot write the secrets key " + path + ": " + std::strerror(err), err};
      }
      return SecretsKey{std::move(*key), true};
    }
    if (errno != EEXIST) {
      return Error{"cannot create the secrets key " + path + ": " + std::strerror(errno), errno};
    }
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return Error{"cannot open the secrets key " + path + ": " + std::strerror(errno) + kHowToMake,
                 errno};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{"the secrets key " + path + " is not a regular file" + kHowToMake};
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return Error{"the secrets key " + path + " may be read or written by other users (mode " +
                 std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                 std::to_string(st.st_mode & 7) + "): refusing to use it; `chmod 600 " + path +
                 "`, and if others could read it, consider it leaked"};
  }
  std::string text(256, '\0');
  ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n < 0) return Error{"cannot read the secrets key " + path + ": " + std::strerror(errno), errno};
  text.resize(static_cast<size_t>(n));
  if (text.size() == kSecretKeyBytes) return SecretsKey{text, false};
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  std::string key = hex_decoded(text);
  if (key.size() != kSecretKeyBytes) {
    return Error{"the secrets key " + path + " is not a 32-byte key (" + std::to_string(n) +
                 " bytes)" + kHowToMake};
  }
  return SecretsKey{std::move(key), false};
}

}  // namespace boxcar::server

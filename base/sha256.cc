#include "base/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <openssl/evp.h>

#include "base/hex.h"
#include "base/unique_fd.h"

namespace boxcar {

namespace {

// EVP fails only when OpenSSL cannot allocate; a wrong digest would be taken as a real one
// (an artifact accepted, a token matched), so stop rather than go on with it.
void check(int ok, const char* what) {
  if (ok == 1) return;
  std::fprintf(stderr, "boxcar: OpenSSL %s failed (out of memory?)\n", what);
  std::abort();
}

}  // namespace

struct Sha256::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  check(ctx_->md != nullptr, "EVP_MD_CTX_new");
  check(EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr), "EVP_DigestInit_ex");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) {
  if (size > 0) check(EVP_DigestUpdate(ctx_->md, data, size), "EVP_DigestUpdate");
}

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  check(EVP_DigestFinal_ex(ctx_->md, digest, &len), "EVP_DigestFinal_ex");
  return hex_encode(digest, len);
}

std::string sha256_hex(std::string_view data) {
  Sha256 hash;
  hash.update(data);
  return hash.hex();
}

Result<std::string> sha256_file(const std::filesystem::path& path, uint64_t* size) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return Error{path.string() + ": " + std::strerror(errno)};
  auto digest = sha256_fd(fd.get(), size);
  if (!digest) return Error{path.string() + ": " + digest.error().message};
  return digest;
}

Result<std::string> sha256_fd(int fd, uint64_t* size) {
  Sha256 hash;
  std::vector<char> buf(1 << 18);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(total));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{std::strerror(errno), errno};
    if (n == 0) break;
    hash.update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (size) *size = total;
  return hash.hex();
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && is_lower_hex(text);
}

}  // namespace boxcar

// SHA-256 (OpenSSL EVP), the only place boxcar computes one: incremental for content hashed as
// it streams past (artifact uploads, downloads), of a string, and of a file.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Lowercase hex of the digest; the hasher is spent afterwards.
  std::string hex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The SHA-256 (lowercase hex) of `data`.
std::string sha256_hex(std::string_view data);

// The SHA-256 (hex) of a file's contents, read in chunks; `size` gets its length if given.
Result<std::string> sha256_file(const std::filesystem::path& path, uint64_t* size = nullptr);

// The SHA-256 (hex) of an open file's bytes from offset 0 to its end, read with pread (the
// file's own offset is left alone); `size` gets how many bytes that was if given.
Result<std::string> sha256_fd(int fd, uint64_t* size = nullptr);

// True for 64 lowercase hex digits.
bool is_sha256_hex(std::string_view text);

}  // namespace boxcar

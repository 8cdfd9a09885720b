#include "cli/serve_data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/private_dir.h"
#include "base/random_token.h"
#include "cli/secret_flag.h"

namespace boxcar::cli {

namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

Status prepare_data_dir(const std::filesystem::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 077) != 0) {
    std::fprintf(stderr,
                 "boxcar serve: warning: data directory %s was mode %s (other users could read "
                 "job environments and artifacts): narrowed to 0700\n",
                 dir.c_str(), octal(st.st_mode).c_str());
  }
  if (Status made = make_private_dir(dir); !made) {
    return Error{"data directory: " + made.error().message + " (give --data DIR)", made.error().err};
  }
  return {};
}

Status narrow_file(const std::filesystem::path& file) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) == 0) return {};
  if (::chmod(file.c_str(), st.st_mode & 0700) != 0) {
    return Error{"cannot chmod 0600 " + file.string() + ": " + std::strerror(errno), errno};
  }
  std::fprintf(stderr, "boxcar serve: warning: %s was mode %s (readable by other users): narrowed to %s\n",
               file.c_str(), octal(st.st_mode).c_str(), octal(st.st_mode & 0700).c_str());
  return {};
}

Result<GeneratedToken> generated_api_token(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    if (Status narrowed = narrow_file(file); !narrowed) return narrowed.error();
    auto token = read_secret_file(file, "the API token file");
    if (!token) return Error{token.error().message + " (delete it to have serve write a new one)"};
    return GeneratedToken{std::move(*token), false};
  }
  if (fd < 0) return Error{"cannot create " + file.string() + ": " + std::strerror(errno), errno};
  auto drawn = random_token();
  if (!drawn) {
    ::close(fd);
    ::unlink(file.c_str());
    return drawn.error();
  }
  std::string token = *drawn + "\n";
  bool written = ::write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size());
  int err = errno;
  ::close(fd);
  if (!written) {
    ::unlink(file.c_str());
    return Error{"cannot write " + file.string() + ": " + std::strerror(err), err};
  }
  token.pop_back();
  return GeneratedToken{std::move(token), true};
}

}  // namespace boxcar::cli

// A test probe, run inside image sandboxes: creates files under the directory argv[1], each
// with a 3 KiB user.* extended attribute (which ext4 keeps in a block of its own, as it does
// not fit in the inode), until something fails; prints what failed. Static: an image has no
// libraries of ours, and busybox has no setfattr.
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  std::string value(3072, 'x');
  for (int i = 0;; ++i) {
    std::string path = std::string(argv[1]) + "/x" + std::to_string(i);
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0 || ::fsetxattr(fd, "user.fill", value.data(), value.size(), 0) != 0) {
      std::fprintf(stderr, "%d files with xattrs, then: %s\n", i, std::strerror(errno));
      return 1;
    }
    ::close(fd);
  }
}

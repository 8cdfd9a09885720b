// A test probe, run inside image sandboxes as a setuid file: prints the real, effective and
// saved uid. Static (an image has no libraries of ours) and, unlike busybox, it never drops
// privileges itself, so a setuid bit that worked shows as effective uid 0.
#include <unistd.h>

#include <cstdio>

int main() {
  uid_t r, e, s;
  getresuid(&r, &e, &s);
  std::printf("%u %u %u\n", r, e, s);
  return 0;
}

// Raw loopback connections for tests of listeners (tests only): a client from a chosen
// 127.0.0.0/8 address, which a server counts as a client of its own, and blocking reads that
// end when the peer closes, so a test can tell a refusal or a timeout from an answer.
#pragma once

#include <cstdint>
#include <string>

namespace boxcar::testing {

// A connection from `source` to 127.0.0.1:`port`; -1 if it failed. Reads on it give up after
// 30 s, only so that a broken server fails a test instead of hanging it.
int connect_from(const std::string& source, uint16_t port);

// Reads until `needle` arrived or the peer closed (or the read timed out); returns what came.
std::string read_until(int fd, const std::string& needle);

// Everything the peer sends until it closes.
std::string read_to_end(int fd);

}  // namespace boxcar::testing

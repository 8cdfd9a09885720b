// SecretMasker: streaming redaction of secret values (and their base64 forms) as `***`.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace boxcar::agent {

// Masks every occurrence of each secret, of its standard base64 encoding, and of that encoding
// without '=' padding. Bytes covered by overlapping or touching occurrences become one `***`,
// so no fragment of a secret survives next to the mask. The result does not depend on how the
// stream is split into writes: a secret split across writes is masked. Only the longest suffix
// of the data seen so far that could still grow into a secret is held back (at most the
// longest pattern minus one byte); everything before it is output at once.
//
// Secrets shorter than 3 bytes (and empty ones) are ignored: masking "a" or "1" would replace
// every such character of the log and make it unreadable, while revealing nothing anyway.
class SecretMasker {
 public:
  static constexpr size_t kMinSecretSize = 3;
  static constexpr std::string_view kMask = "***";

  SecretMasker() = default;
  explicit SecretMasker(const std::vector<std::string>& secrets);

  // False when there is nothing to mask: callers may then use their input as is.
  bool active() const { return !patterns_.empty(); }

  // Appends the masked form of everything that can be decided after `in` to `out`.
  void write(std::string_view in, std::string& out);
  // End of stream: appends whatever was held back, masked.
  void flush(std::string& out);

  size_t held_back() const { return held_.size(); }

 private:
  class Scanner;
  // A pattern's first and last byte, the last at `offset`: the candidate filter.
  struct Anchor {
    unsigned char first;
    unsigned char last;
    uint32_t offset;
    bool operator==(const Anchor&) const = default;
  };

  void process(std::string_view buf, bool final, std::string& out);
  size_t longest_match_at(std::string_view buf, size_t pos) const;  // 0 when none
  size_t hold_start(std::string_view buf) const;

  std::vector<std::string> patterns_;                  // longest first
  std::array<std::vector<uint32_t>, 256> by_first_{};  // pattern indexes by first byte
  std::vector<Anchor> anchors_;                        // distinct ones
  size_t max_len_ = 0;

  std::string held_;        // undecided tail of the stream
  std::string scratch_;     // held_ + the next write, when held_ is not empty
  size_t carry_cover_ = 0;  // leading bytes of held_ already covered by a known occurrence
  bool in_mask_ = false;    // the last byte output was part of a masked run
};

}  // namespace boxcar::agent

#include "agent/secret_masker.h"

#include <algorithm>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/base64.h"

namespace boxcar::agent {

namespace {

void add_pattern(std::vector<std::string>& patterns, std::string p) {
  if (p.size() >= SecretMasker::kMinSecretSize) patterns.push_back(std::move(p));
}

}  // namespace

// Yields the positions where some pattern may start, 64 bytes at a time: a position is a
// candidate when its byte is a pattern's first byte and the byte at the pattern's last offset
// is its last byte (SIMD where there is SSE2). Two bytes far apart rarely both match by
// chance, so few candidates reach the full comparison even when a secret starts with a
// common letter. Near the end of the buffer, or without SSE2, the first byte alone decides.
class SecretMasker::Scanner {
 public:
  Scanner(const SecretMasker& m, std::string_view buf) : m_(m), d_(buf.data()), n_(buf.size()) {}

  size_t next(size_t from) {
    if (from >= n_) return std::string_view::npos;
    if (!loaded_ || from >= base_ + 64) {
      base_ = from;
      mask_ = block(base_);
      loaded_ = true;
    } else {
      mask_ &= ~uint64_t{0} << (from - base_);
    }
    while (mask_ == 0) {
      base_ += 64;
      if (base_ >= n_) return std::string_view::npos;
      mask_ = block(base_);
    }
    return base_ + static_cast<size_t>(__builtin_ctzll(mask_));
  }

 private:
  uint64_t block(size_t at) const {
    const char* p = d_ + at;
#if defined(__SSE2__)
    if (at + 64 + m_.max_len_ - 1 <= n_) {
      uint64_t m = 0;
      for (const Anchor& a : m_.anchors_) {
        const __m128i first = _mm_set1_epi8(static_cast<char>(a.first));
        const __m128i last = _mm_set1_epi8(static_cast<char>(a.last));
        for (int i = 0; i < 4; ++i) {
          __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
          __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i + a.offset));
          __m128i hit = _mm_and_si128(_mm_cmpeq_epi8(x, first), _mm_cmpeq_epi8(y, last));
          m |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(hit))} << (16 * i);
        }
      }
      return m;
    }
#endif
    uint64_t m = 0;
    size_t len = std::min<size_t>(64, n_ - at);
    for (size_t i = 0; i < len; ++i) {
      if (!m_.by_first_[static_cast<unsigned char>(p[i])].empty()) m |= uint64_t{1} << i;
    }
    return m;
  }

  const SecretMasker& m_;
  const char* d_;
  size_t n_;
  size_t base_ = 0;
  uint64_t mask_ = 0;
  bool loaded_ = false;
};

SecretMasker::SecretMasker(const std::vector<std::string>& secrets) {
  std::vector<std::string> patterns;
  for (const std::string& s : secrets) {
    if (s.size() < kMinSecretSize) continue;
    add_pattern(patterns, s);
    std::string b64 = base64_encode(s);
    std::string unpadded = b64.substr(0, b64.find_last_not_of('=') + 1);
    add_pattern(patterns, std::move(b64));
    add_pattern(patterns, std::move(unpadded));
    // Inside a longer base64 text (`printf 'user:%s' "$TOKEN" | base64`, a JSON blob) the
    // secret starts at any of the three byte offsets of a 3-byte group, and its first and last
    // characters there mix in the neighbouring bytes: mask the characters that encode the
    // secret's bits alone, for each offset.
    for (size_t shift = 0; shift < 3; ++shift) {
      std::string shifted = base64_encode(std::string(shift, '\0') + s);
      size_t first = (8 * shift + 5) / 6;           // the first character wholly within
      size_t last = (8 * (shift + s.size())) / 6;   // one past the last such character
      // Short cores would mask unrelated text: only secrets of 6 bytes or more get them.
      if (last > first && last - first >= 8) {
        add_pattern(patterns, shifted.substr(first, last - first));
      }
    }
    // A multi-line secret (a private key) is also masked line by line: a step that prints
    // only part of it, or rewrites its line endings, must not reveal those lines.
    if (s.find('\n') != std::string::npos) {
      size_t start = 0;
      while (start < s.size()) {
        size_t end = std::min(s.find('\n', start), s.size());
        std::string line = s.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        add_pattern(patterns, std::move(line));
        start = end + 1;
      }
    }
  }
  std::sort(patterns.begin(), patterns.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  patterns.erase(std::unique(patterns.begin(), patterns.end()), patterns.end());
  patterns_ = std::move(patterns);
  for (uint32_t i = 0; i < patterns_.size(); ++i) {
    unsigned char first = static_cast<unsigned char>(patterns_[i][0]);
    by_first_[first].push_back(i);
    max_len_ = std::max(max_len_, patterns_[i].size());
    Anchor a{first, static_cast<unsigned char>(patterns_[i].back()),
             static_cast<uint32_t>(patterns_[i].size() - 1)};
    if (std::find(anchors_.begin(), anchors_.end(), a) == anchors_.end()) anchors_.push_back(a);
  }
}

size_t SecretMasker::longest_match_at(std::string_view buf, size_t pos) const {
  size_t avail = buf.size() - pos;
  const char* at = buf.data() + pos;
  for (uint32_t idx : by_first_[static_cast<unsigned char>(*at)]) {  // longest first
    const std::string& p = patterns_[idx];
    if (p.size() <= avail && at[1] == p[1] && std::memcmp(at, p.data(), p.size()) == 0) {
      return p.size();
    }
  }
  return 0;
}

// The earliest position whose suffix is a proper prefix of some pattern: from there on the
// data may still turn out to be (part of) a secret, so it waits for the next write.
size_t SecretMasker::hold_start(std::string_view buf) const {
  size_t n = buf.size();
  size_t start = n > max_len_ - 1 ? n - (max_len_ - 1) : 0;
  for (size_t p = start; p < n; ++p) {
    size_t avail = n - p;
    for (uint32_t idx : by_first_[static_cast<unsigned char>(buf[p])]) {
      const std::string& pat = patterns_[idx];
      if (pat.size() > avail && std::memcmp(buf.data() + p, pat.data(), avail) == 0) return p;
    }
  }
  return n;
}

void SecretMasker::process(std::string_view buf, bool final, std::string& out) {
  size_t hold = final ? buf.size() : hold_start(buf);
  size_t done = 0;  // bytes of buf already decided
  auto plain = [&](size_t to) {
    if (to <= done) return;
    out.append(buf.data() + done, to - done);
    in_mask_ = false;
    done = to;
  };
  auto mask = [&](size_t to) {
    if (to <= done) return;
    if (!in_mask_) out.append(kMask);
    in_mask_ = true;
    done = to;
  };

  // The current run of covered bytes is [start, run_end); it began at or after `done`.
  bool has_run = carry_cover_ > 0;
  size_t run_end = carry_cover_;
  Scanner scanner(*this, buf);
  // Occurrences starting in the held-back tail are found again when it is rescanned.
  for (size_t p = scanner.next(0); p < hold; p = scanner.next(p + 1)) {
    size_t len = longest_match_at(buf, p);
    if (len == 0) continue;
    if (has_run && p <= run_end) {
      run_end = std::max(run_end, p + len);
    } else {
      if (has_run) mask(run_end);
      plain(p);
      has_run = true;
      run_end = p + len;
    }
  }
  if (has_run) mask(std::min(run_end, hold));
  plain(hold);
  carry_cover_ = has_run && run_end > hold ? run_end - hold : 0;
  held_.assign(buf.substr(hold));
}

void SecretMasker::write(std::string_view in, std::string& out) {
  if (!active()) {
    out.append(in);
    return;
  }
  if (held_.empty()) {
    process(in, false, out);
    return;
  }
  scratch_.assign(held_);
  scratch_.append(in);
  process(scratch_, false, out);
}

void SecretMasker::flush(std::string& out) {
  if (active()) {
    scratch_.swap(held_);
    process(scratch_, true, out);
  }
  held_.clear();
  carry_cover_ = 0;
  in_mask_ = false;
}

}  // namespace boxcar::agent

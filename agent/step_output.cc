#include "agent/step_output.h"

#include <fcntl.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "agent/secret_masker.h"
#include "base/beneath.h"
#include "base/size.h"

namespace boxcar::agent {

namespace {

// An append-only file behind a large buffer: one write(2) per buffer, none per line.
// A failed write disables the file (the run goes on) and is reported once at close.
class BufferedFile {
 public:
  ~BufferedFile() { close(); }

  // Opens on the first append instead: a step that prints nothing leaves no file (creating
  // inodes is most of what a silent step costs the log pipeline).
  void open_later(int dir, const std::filesystem::path& path, size_t capacity) {
    path_ = path;
    later_dir_ = dir;
    later_capacity_ = capacity;
  }

  bool open(int dir, const std::filesystem::path& path, size_t capacity) {
    later_capacity_ = 0;
    path_ = path;
    fd_ = dir >= 0 ? create_fresh(dir, path.filename().string()).release()
                   : ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      error_ = errno;
      return false;
    }
    capacity_ = capacity;  // the buffer itself comes with the first append
    return true;
  }

  // Bytes appended so far, buffered or not: the log offset of the next byte.
  uint64_t offset() const { return offset_; }

  void append(const char* data, size_t n) {
    offset_ += n;
    if (later_capacity_ > 0) open(later_dir_, path_, later_capacity_);
    if (fd_ < 0) return;
    // Neither zeroed nor touched before use: most steps print far less than the capacity.
    if (!buf_) buf_ = std::make_unique_for_overwrite<char[]>(capacity_);
    if (n > capacity_ - used_) {
      flush();
      if (n >= capacity_) {
        write_all(data, n);
        return;
      }
    }
    std::memcpy(buf_.get() + used_, data, n);
    used_ += n;
  }

  void flush() {
    if (used_ > 0 && fd_ >= 0) write_all(buf_.get(), used_);
    used_ = 0;
  }

  void close() {
    flush();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int error() const { return error_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_all(const char* data, size_t n) {
    while (n > 0 && fd_ >= 0) {
      ssize_t w = ::write(fd_, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        ::close(fd_);
        fd_ = -1;
        return;
      }
      data += w;
      n -= static_cast<size_t>(w);
    }
  }

  std::filesystem::path path_;
  int fd_ = -1;
  int later_dir_ = -1;
  size_t later_capacity_ = 0;  // > 0: open_later() was called and the file is not open yet
  std::unique_ptr<char[]> buf_;
  size_t capacity_ = 0;
  size_t used_ = 0;
  uint64_t offset_ = 0;
  int error_ = 0;
};

// Yields the positions of '\n' in order. Lines of a few bytes are common (`yes`, progress
// dots, blank lines), and a memchr call per line would cost more than the line; this finds
// the newlines of 64 bytes at once and then walks the bits.
class NewlineFinder {
 public:
  static constexpr size_t npos = std::string_view::npos;

  explicit NewlineFinder(std::string_view v) : d_(v.data()), n_(v.size()) {}

  // The first newline at or after `from`.
  size_t next(size_t from) {
    if (from >= n_) return npos;
    if (from >= base_ + 64 || from < base_ || !loaded_) {
      base_ = from;
      mask_ = block(base_);
      loaded_ = true;
    } else {
      size_t skip = from - base_;
      mask_ &= ~uint64_t{0} << skip;
    }
    while (mask_ == 0) {
      base_ += 64;
      if (base_ >= n_) return npos;
      mask_ = block(base_);
    }
    return base_ + static_cast<size_t>(__builtin_ctzll(mask_));
  }

 private:
  uint64_t block(size_t at) const {
    const char* p = d_ + at;
    if (at + 64 > n_) {
      uint64_t m = 0;
      for (size_t i = 0; i < n_ - at; ++i) m |= uint64_t{p[i] == '\n'} << i;
      return m;
    }
#if defined(__SSE2__)
    const __m128i nl = _mm_set1_epi8('\n');
    uint64_t m = 0;
    for (int i = 0; i < 4; ++i) {
      __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
      m |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, nl)))} << (16 * i);
    }
    return m;
#else
    uint64_t m = 0;
    for (size_t i = 0; i < 64; ++i) m |= uint64_t{p[i] == '\n'} << i;
    return m;
#endif
  }

  const char* d_;
  size_t n_;
  size_t base_ = 0;
  uint64_t mask_ = 0;
  bool loaded_ = false;
};

constexpr size_t kLogBuffer = 256 * 1024;
constexpr size_t kTimesBuffer = 16 * 1024;

}  // namespace

struct StepOutput::Impl {
  struct Stream {
    SecretMasker masker;
    std::string line;  // the unfinished line, at most max_line bytes
  };

  Impl(StepOutputOptions o, RunObserver& obs)
      : options(std::move(o)), observer(obs), wants_lines(obs.wants_lines()) {
    if (options.max_line == 0) options.max_line = 1;
    for (Stream& s : streams) s.masker = SecretMasker(options.secrets);
    if (!options.log_file.empty()) {
      std::filesystem::path times_path = options.log_file;
      times_path += ".times";
      if (!log.open(options.log_dir, options.log_file, kLogBuffer)) report(log);
      else times.open_later(options.log_dir, times_path, kTimesBuffer);
    }
  }

  void report(const BufferedFile& f) {
    if (file_error_reported) return;
    file_error_reported = true;
    observer.notice(
        fmt::format("cannot write {}: {}", f.path().string(), std::strerror(f.error())));
  }

  // Log bytes that still lie in the caller's buffer are gathered into one run and copied
  // into the file buffer once per write(), not once per line.
  uint64_t log_offset() const { return log.offset() + run_len; }
  void log_view(const char* p, size_t n) {
    if (run_len > 0 && run_ptr + run_len == p) {
      run_len += n;
      return;
    }
    flush_run();
    run_ptr = p;
    run_len = n;
  }
  void log_copy(std::string_view text) {
    flush_run();
    log.append(text.data(), text.size());
  }
  void flush_run() {
    if (run_len > 0) log.append(run_ptr, run_len);
    run_len = 0;
  }

  void mark_time() {
    if (timed) return;
    timed = true;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
    char buf[64];
    int len = std::snprintf(buf, sizeof buf, "%llu %lld\n",
                            static_cast<unsigned long long>(log_offset()),
                            static_cast<long long>(ms.count()));
    times.append(buf, static_cast<size_t>(len));
  }

  // One line or piece. `in_view`: the text lies in the write()'s buffer, followed by its
  // newline unless it is a cut piece. Returns false once the limit is reached.
  bool emit(std::string_view text, bool cut, bool in_view) {
    uint64_t cost = text.size() + (cut ? 0 : 1);
    if (kept + cost > options.limit) {
      truncated = true;
      return false;
    }
    kept += cost;
    mark_time();
    if (in_view) {
      log_view(text.data(), cost);
    } else {
      log_copy(text);
      if (!cut) log_copy("\n");
    }
    observer.step_line(options.step, options.name, now, text, cut);
    return true;
  }

  // Completes s.line with `seg` (the rest of the line, in the view, before its newline).
  bool finish_line(Stream& s, std::string_view seg) {
    size_t max = options.max_line;
    if (s.line.size() + seg.size() <= max) {
      s.line.append(seg);
      bool ok = emit(s.line, false, false);
      s.line.clear();
      return ok;
    }
    size_t take = max - s.line.size();
    s.line.append(seg.substr(0, take));
    seg.remove_prefix(take);
    bool ok = emit(s.line, true, false);
    s.line.clear();
    if (!ok) return false;
    return emit_pieces(seg, true);
  }

  // `seg` lies in the view; when `final`, it is followed by its newline there.
  bool emit_pieces(std::string_view seg, bool final) {
    size_t max = options.max_line;
    while (seg.size() > max) {
      if (!emit(seg.substr(0, max), true, true)) return false;
      seg.remove_prefix(max);
    }
    return final ? emit(seg, false, true) : true;
  }

  // `tail` has no newline: keep it, cutting off pieces so that s.line stays within max_line.
  bool hold_partial(Stream& s, std::string_view tail) {
    size_t max = options.max_line;
    if (s.line.size() + tail.size() <= max) {
      s.line.append(tail);
      return true;
    }
    if (!s.line.empty()) {
      size_t take = max - s.line.size();
      s.line.append(tail.substr(0, take));
      tail.remove_prefix(take);
      bool ok = emit(s.line, true, false);
      s.line.clear();
      if (!ok) return false;
    }
    while (tail.size() > max) {
      if (!emit(tail.substr(0, max), true, true)) return false;
      tail.remove_prefix(max);
    }
    s.line.assign(tail);
    return true;
  }

  // Nobody reads the lines: every complete line up to the chunk's last newline goes to the
  // file in one piece. Falls back to the line path when a line is pending or the cap is near.
  bool bulk(Stream& s, std::string_view v, size_t& pos) {
    if (!s.line.empty()) return false;
    const void* last = memrchr(v.data() + pos, '\n', v.size() - pos);
    if (!last) return false;
    size_t end = static_cast<size_t>(static_cast<const char*>(last) - v.data()) + 1;
    if (end - pos > options.limit - kept) return false;
    mark_time();
    kept += end - pos;
    log_view(v.data() + pos, end - pos);
    pos = end;
    return true;
  }

  void split(Stream& s, std::string_view v) {
    const char* d = v.data();
    size_t n = v.size();
    NewlineFinder newlines(v);
    size_t pos = 0;
    if (!wants_lines && bulk(s, v, pos) && pos == n) return;
    while (pos < n) {
      // The common case first: whole lines that fit, straight from the buffer. They are
      // contiguous there, so the file gets them in one piece after the loop.
      size_t stretch = pos;
      size_t nl = newlines.next(pos);
      if (s.line.empty()) {
        uint64_t budget = options.limit - kept;
        const size_t max = options.max_line;
        const std::string_view name = options.name;
        while (nl != NewlineFinder::npos) {
          size_t len = nl - pos;
          if (len > max || len >= budget) break;
          budget -= len + 1;
          observer.step_line(options.step, name, now, std::string_view(d + pos, len), false);
          pos = nl + 1;
          nl = newlines.next(pos);
        }
        if (pos > stretch) {
          mark_time();
          kept = options.limit - budget;
          log_view(d + stretch, pos - stretch);
        }
        if (pos == n) return;
      }
      if (nl == NewlineFinder::npos) {
        hold_partial(s, v.substr(pos));
        return;
      }
      std::string_view seg(d + pos, nl - pos);
      bool ok;
      if (!s.line.empty()) ok = finish_line(s, seg);
      else if (seg.size() <= options.max_line) ok = emit(seg, false, true);
      else ok = emit_pieces(seg, true);
      if (!ok) return;
      pos = nl + 1;
    }
  }

  void begin_call() {
    now = std::chrono::system_clock::now();
    timed = false;
  }

  void write(executors::OutputStream which, std::string_view bytes) {
    bytes_seen += bytes.size();
    if (closed || truncated) return;
    begin_call();
    Stream& s = streams[which == executors::OutputStream::out ? 0 : 1];
    std::string_view v = bytes;
    if (s.masker.active()) {
      masked.clear();
      s.masker.write(bytes, masked);
      v = masked;
    }
    split(s, v);
    flush_run();
  }

  // A line of boxcar's own before any output: outside the limit and the masking.
  void notice(std::string_view text) {
    if (closed || bytes_seen > 0) return;
    begin_call();
    std::string line = "boxcar: " + std::string(text);
    mark_time();
    log_copy(line);
    log_copy("\n");
    observer.step_line(options.step, options.name, now, line, false);
    flush_run();
  }

  void close(std::string_view note) {
    if (closed) return;
    closed = true;
    begin_call();
    for (Stream& s : streams) {
      if (truncated) break;
      if (s.masker.active()) {
        masked.clear();
        s.masker.flush(masked);
        split(s, masked);
        flush_run();
      }
      if (!truncated && !s.line.empty()) emit(s.line, false, false);
      s.line.clear();
    }
    if (truncated) {
      std::string text = fmt::format("boxcar: output truncated after {} ({} bytes in total)",
                                     format_size(options.limit), bytes_seen);
      mark_time();
      log_copy(text);
      log_copy("\n");
      observer.step_line(options.step, options.name, now, text, false);
    }
    if (!note.empty()) {
      std::string text = "boxcar: " + std::string(note);
      mark_time();
      log_copy(text);
      log_copy("\n");
      observer.step_line(options.step, options.name, now, text, false);
    }
    flush_run();
    log.close();
    times.close();
    if (log.error() != 0) report(log);
    else if (times.error() != 0) report(times);
  }

  StepOutputOptions options;
  RunObserver& observer;
  const bool wants_lines;
  Stream streams[2];
  std::string masked;
  BufferedFile log;
  BufferedFile times;
  const char* run_ptr = nullptr;
  size_t run_len = 0;
  Timestamp now;
  bool timed = false;  // this call's .times record is written
  uint64_t bytes_seen = 0;
  uint64_t kept = 0;
  bool truncated = false;
  bool closed = false;
  bool file_error_reported = false;
};

StepOutput::StepOutput(StepOutputOptions options, RunObserver& observer)
    : impl_(std::make_unique<Impl>(std::move(options), observer)) {}

StepOutput::~StepOutput() {
  if (impl_) impl_->close({});
}

void StepOutput::write(executors::OutputStream stream, std::string_view bytes) {
  impl_->write(stream, bytes);
}

void StepOutput::notice(std::string_view text) { impl_->notice(text); }

void StepOutput::close(std::string_view note) { impl_->close(note); }

uint64_t StepOutput::bytes_seen() const { return impl_->bytes_seen; }

bool StepOutput::truncated() const { return impl_->truncated; }

size_t StepOutput::pending_line_bytes(executors::OutputStream stream) const {
  return impl_->streams[stream == executors::OutputStream::out ? 0 : 1].line.size();
}

}  // namespace boxcar::agent

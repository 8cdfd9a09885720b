// Result<T>: a value or an Error, returned across module boundaries instead of exceptions.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace boxcar {

// The kind of an Error: what a caller must tell apart to act on it (the CLI maps each kind to an
// exit code in cli/exit_codes.cc), so nobody sorts errors by searching their text.
enum class ErrorCode {
  internal,        // a fault of boxcar or of its machine (the default)
  usage,           // a flag or argument is wrong
  invalid_input,   // a file or value given is malformed: a pipeline, a PEM file, a URL
  not_found,       // what was named does not exist: a file, a job, a secret
  conflict,        // the current state forbids it: already running, a name taken
  limit_exceeded,  // over a configured limit; `subject` names the limit
  unavailable,     // a server, store or kernel facility could not be reached or set up
};

// What went wrong, in words a user can act on, without naming CLI flags: `subject` names the
// setting the error is about (a limit like "max_memory", an input like "tls_cert"), and the CLI
// turns it into the flag to use. `err` is the errno when one applies.
struct Error {
  Error() = default;
  Error(std::string message_, int err_ = 0, ErrorCode code_ = ErrorCode::internal,  // NOLINT: implicit
        std::string subject_ = {})
      : message(std::move(message_)), err(err_), code(code_), subject(std::move(subject_)) {}

  std::string message;
  int err = 0;
  ErrorCode code = ErrorCode::internal;
  std::string subject;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}      // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace boxcar

// Errors as values. The library never exits or aborts on bad input: every fallible call
// returns Status or Result<T>, and the caller (usually the CLI) decides what to print.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace altup {

// What kind of failure, for callers that branch on it (the C API's status codes); the message
// is for people. Set where the failure arises; most are Other (bad input, bad model).
// BadChoice: an option the caller gave that this model cannot take (a sub-model it does not
// hold), as opposed to a problem with the model itself.
enum class ErrorKind { Other, Io, OutOfMemory, ContextFull, TokenOutOfRange, NonFinite, BadChoice };

struct Error {
  std::string message;
  ErrorKind kind = ErrorKind::Other;
};

// Result<T>: either a value or an Error naming what went wrong.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

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

// Status: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}
  static Status success() { return {}; }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Error make_error(std::string message, ErrorKind kind = ErrorKind::Other) {
  return Error{std::move(message), kind};
}

}  // namespace altup

// Propagate an error from an expression that yields Status or Result<T>.
#define ALTUP_TRY(expr)                                            \
  do {                                                             \
    auto&& altup_try_result_ = (expr);                             \
    if (!altup_try_result_.ok()) return altup_try_result_.error(); \
  } while (0)

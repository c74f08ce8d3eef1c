// StatusOr<T>: either a value of type T or a non-OK Status explaining why
// there is none. Thread-compatible, like T itself.
#pragma once

#include <cassert>
#include <utility>
#include <variant>

#include "base/status.h"

namespace imagesmith {

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // Holds `status`, which must not be OK (an OK status here is a bug and
  // becomes an Internal error so the caller never sees a value-less OK).
  StatusOr(Status status)  // NOLINT(google-explicit-constructor)
      : data_(status.ok() ? InternalError("StatusOr constructed from OK status")
                          : std::move(status)) {}
  StatusOr(T value) : data_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  // The requires-clause keeps this from hiding the copy and move constructors.
  // NOLINTBEGIN(google-explicit-constructor,bugprone-forwarding-reference-overload)
  template <typename U>
    requires(std::is_constructible_v<T, U &&> && !std::is_same_v<std::decay_t<U>, Status> &&
             !std::is_same_v<std::decay_t<U>, T> && !std::is_same_v<std::decay_t<U>, StatusOr>)
  StatusOr(U&& value) : data_(T(std::forward<U>(value))) {}
  // NOLINTEND(google-explicit-constructor,bugprone-forwarding-reference-overload)

  bool ok() const { return std::holds_alternative<T>(data_); }

  // The status: OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(data_); }

  // Requires ok().
  const T& value() const& {
    assert(ok());
    return std::get<T>(data_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(data_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(data_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> data_;
};

}  // namespace imagesmith

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (a StatusOr); on error returns
// its status, otherwise move-assigns the value into `lhs` (which may be a
// declaration such as `auto x`).
// `lhs` may be a declaration, so it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSIGN_OR_RETURN(lhs, expr) \
  IMAGESMITH_ASSIGN_OR_RETURN_IMPL(IMAGESMITH_CONCAT(imagesmith_so_, __LINE__), lhs, expr)
#define IMAGESMITH_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return tmp.status();                    \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

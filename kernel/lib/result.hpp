// Result<T, E>: the return type of every fallible call in the monitor.
// No exceptions in the kernel, so errors travel as values; TRY() propagates them.
#pragma once

#include <type_traits>
#include <utility>

namespace vlibos {

template <typename E>
struct Failure {
    E error;
};

// Wraps an error so that `return fail(Error::X);` converts to any Result<T, Error>.
template <typename E>
constexpr Failure<E> fail(E error) { return Failure<E>{error}; }

template <typename T, typename E>
class [[nodiscard]] Result {
    static_assert(std::is_default_constructible_v<T>, "Result<T, E> needs a default-constructible T");

public:
    constexpr Result(const T& value) : value_(value), ok_(true) {}
    constexpr Result(T&& value) : value_(std::move(value)), ok_(true) {}
    constexpr Result(Failure<E> failure) : error_(failure.error), ok_(false) {}

    constexpr bool ok() const { return ok_; }
    constexpr explicit operator bool() const { return ok_; }
    constexpr E error() const { return error_; }
    constexpr T& value() { return value_; }
    constexpr const T& value() const { return value_; }
    constexpr T take() { return std::move(value_); }

private:
    T value_{};
    E error_{};
    bool ok_;
};

// Result of a call that returns nothing but can fail.
template <typename E>
class [[nodiscard]] Status {
public:
    constexpr Status() : ok_(true) {}
    constexpr Status(Failure<E> failure) : error_(failure.error), ok_(false) {}
    constexpr bool ok() const { return ok_; }
    constexpr explicit operator bool() const { return ok_; }
    constexpr E error() const { return error_; }

private:
    E error_{};
    bool ok_;
};

} // namespace vlibos

// TRY(expr): evaluates a Result or Status; on failure returns its error from the enclosing
// function, otherwise yields the value (for Result). Uses a GNU statement expression.
#define TRY(expr)                                              \
    ({                                                         \
        auto _try_result = (expr);                             \
        if (!_try_result.ok())                                 \
            return ::vlibos::fail(_try_result.error());        \
        ::vlibos::detail::try_value(_try_result);              \
    })

namespace vlibos::detail {
template <typename T, typename E>
constexpr T try_value(Result<T, E>& r) { return r.take(); }
template <typename E>
constexpr void try_value(Status<E>&) {}
} // namespace vlibos::detail

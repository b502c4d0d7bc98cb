/// @file
/// Internal: the argument and result types of a listener or handler, read from its signature.
#pragma once

#include <asio/awaitable.hpp>
#include <functional>
#include <tuple>
#include <type_traits>

namespace meshy::detail {

template <class T>
struct callable_traits : callable_traits<decltype(&T::operator())> {};

template <class R, class... A>
struct callable_traits<R (*)(A...)> {
    using result = R;
    using args = std::tuple<std::remove_cvref_t<A>...>;
};
template <class R, class... A>
struct callable_traits<R (*)(A...) noexcept> : callable_traits<R (*)(A...)> {};
template <class R, class... A>
struct callable_traits<R(A...)> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...)> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) noexcept> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const noexcept> : callable_traits<R (*)(A...)> {};

/// True for a callable whose signature can be read (not a generic lambda, not overloaded).
template <class F>
concept has_plain_signature = requires {
    typename callable_traits<std::decay_t<F>>::args;
};

template <class T>
struct awaitable_value {
    static constexpr bool is_awaitable = false;
    using type = T;
};
template <class T, class E>
struct awaitable_value<asio::awaitable<T, E>> {
    static constexpr bool is_awaitable = true;
    using type = T;
};

}  // namespace meshy::detail

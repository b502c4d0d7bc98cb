/// @file
/// `meshy::Loan`: a message built straight in shared memory (Node::loan, Node::send_loaned).
/// Listeners on the same host connected over shared memory read it where it lies, without a copy
/// (docs/shm.md, "Loans"); every other listener gets its bytes as an ordinary message.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "meshy/codec.hpp"

namespace meshy {

class Node;
namespace detail {
struct LoanState;
class LoanRequest;
}  // namespace detail

/// Options of Node::loan.
struct LoanOptions {
    /// The message's codec: `raw` (the payload is the loan's bytes, for `listen<RawCodec>` and
    /// `listen_raw`) or `msgpack` (the bytes are one msgpack `bin` argument, for listeners of
    /// `std::span<const std::byte>`, a view in place, or `std::vector<std::byte>`, a copy; raw
    /// listeners see the 6 bytes of a one-argument array and a bin header first).
    CodecId codec = CodecId::raw;
};

/// A block of the node's loan pool, writable, for one message on one topic. Move-only. Send it
/// with Node::send_loaned(std::move(loan)); a loan dropped unsent gives its block back. Once sent
/// (or moved from), using it throws Error(errc::loan_spent): write the next message in a new loan.
/// Do not keep `bytes()` past send_loaned(): listeners read that memory in place.
///
/// @code
/// auto loan = co_await node.loan("camera", 8 << 20);
/// fill(loan.bytes());
/// co_await node.send_loaned(std::move(loan));
/// @endcode
class Loan {
public:
    Loan() = default;
    Loan(Loan&& other) noexcept;
    Loan& operator=(Loan&& other) noexcept;
    Loan(const Loan&) = delete;
    Loan& operator=(const Loan&) = delete;
    ~Loan();

    /// The message's bytes to fill, as many as asked. @throws Error(errc::loan_spent) once sent.
    std::span<std::byte> bytes() const;
    /// Their count. @throws Error(errc::loan_spent) once sent.
    std::size_t size() const;
    /// The topic it goes to. @throws Error(errc::loan_spent) once sent.
    const std::string& topic() const;
    /// False once sent or moved from (or default-constructed).
    explicit operator bool() const noexcept { return state_ != nullptr; }

private:
    friend class Node;
    friend class detail::LoanRequest;
    explicit Loan(std::shared_ptr<detail::LoanState> state) noexcept;
    const detail::LoanState& state() const;

    std::shared_ptr<detail::LoanState> state_;
    bool sent_ = false;  // for a clearer error than "moved from"
};

}  // namespace meshy

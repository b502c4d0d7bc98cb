// meshy::Loan and Node::loan / Node::send_loaned: messages built in the node's shared-memory pool
// (docs/shm.md, "Loans").
#include "meshy/loan.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "common/drop_counter.hpp"
#include "meshy/log.hpp"
#include "meshy/node.hpp"
#include "node/loan_state.hpp"
#include "node/node_impl.hpp"

namespace meshy {
namespace {

// msgpack's bin 32 header: the marker, then the length big-endian.
constexpr std::size_t msgpack_bin_head = 5;

void write_bin_head(std::span<std::byte> at, std::size_t size) {
    at[0] = std::byte{0xc6};
    for (std::size_t i = 0; i < 4; ++i) {
        at[1 + i] = std::byte(static_cast<unsigned char>(size >> (8 * (3 - i))));
    }
}

// Loans refused for want of room (OutboxFull::drop_oldest): counted, warned once a second.
void warn_refused(const std::string& topic) {
    static std::mutex mutex;
    static detail::DropCounter drops;
    std::uint64_t report = 0;
    {
        std::lock_guard lock(mutex);
        report = drops.drop();
    }
    if (report != 0) {
        log(LogLevel::warn, "loan pool full: refused " + std::to_string(report) + " loan(s) (last on '" + topic +
                                "'); listeners still hold earlier ones");
    }
}

}  // namespace

Loan::Loan(std::shared_ptr<detail::LoanState> state) noexcept : state_(std::move(state)) {
}
Loan::Loan(Loan&& other) noexcept : state_(std::move(other.state_)), sent_(std::exchange(other.sent_, false)) {
}
Loan& Loan::operator=(Loan&& other) noexcept {
    state_ = std::move(other.state_);
    sent_ = std::exchange(other.sent_, false);
    return *this;
}
Loan::~Loan() = default;

const detail::LoanState& Loan::state() const {
    if (!state_) {
        throw Error(errc::loan_spent, sent_ ? "this loan was sent: build the next message in a new loan"
                                            : "an empty loan (moved from, or never lent)");
    }
    return *state_;
}

std::span<std::byte> Loan::bytes() const {
    return state().user_bytes();
}

std::size_t Loan::size() const {
    return state().user_bytes().size();
}

const std::string& Loan::topic() const {
    return state().topic;
}

asio::awaitable<Loan> Node::loan(std::string topic, std::size_t bytes, LoanOptions options) {
    if (topic.empty() || topic.size() > 0xffff) {
        throw Error(errc::invalid_argument, "topic name must have 1 to 65535 bytes");
    }
    if (options.codec != CodecId::raw && options.codec != CodecId::msgpack) {
        throw Error(errc::invalid_argument,
                    "a loan's codec is raw or msgpack, not " + detail::describe_codec(options.codec));
    }
    if (options.codec == CodecId::msgpack && bytes > 0xffffffffu) {
        throw Error(errc::invalid_argument, "a msgpack bin holds at most 4 GiB");
    }
    const std::size_t head = options.codec == CodecId::msgpack ? msgpack_bin_head : 0;
    const std::size_t size = std::max<std::size_t>(head + bytes, 1);
    const auto& pool = impl_->loan_pool();
    if (!pool->fits(size)) {
        throw Error(errc::invalid_argument, "a loan of " + std::to_string(bytes) +
                                                " bytes does not fit the loan pool (" + std::to_string(pool->size()) +
                                                " bytes, NodeOptions::shm_pool_bytes)");
    }
    std::string error;
    if (!pool->ready(error)) {
        throw Error(errc::io_error, "the loan pool: " + error);
    }
    const bool wait = impl_->options().outbox_full == OutboxFull::wait;
    std::optional<detail::ShmLoanPool::Block> block;
    for (;;) {
        if (!running() || pool->stopped()) {
            throw Error(errc::not_running, "loan('" + topic + "')");
        }
        if (!wait) {
            block = pool->allocate(size);
            if (!block) {
                warn_refused(topic);
                throw Error(errc::pool_exhausted, "loan of " + std::to_string(bytes) + " bytes on '" + topic +
                                                      "': listeners still hold earlier loans");
            }
            break;
        }
        // Waits for a block to be freed (a listener lets go, or its link closes) or the node to
        // stop: never longer than the node runs.
        auto freed = std::make_shared<asio::experimental::concurrent_channel<void(std::error_code, int)>>(
            co_await asio::this_coro::executor, 1);
        block = pool->allocate(size, [freed] { freed->try_send(std::error_code{}, 0); });
        if (block) {
            break;
        }
        co_await freed->async_receive(asio::experimental::as_tuple(asio::use_awaitable));
    }
    auto state = std::make_shared<detail::LoanState>(pool, *block, std::move(topic), options.codec, head);
    if (head != 0) {
        write_bin_head(pool->bytes(*block), bytes);
    }
    co_return Loan(std::move(state));
}

asio::awaitable<void> Node::send_loaned(Loan&& loan) {
    // Taken now, like send()'s arguments: nothing refers to the loan afterwards, and the moved-from
    // object says it was sent.
    if (!loan.state_) {
        (void)loan.state();  // throws loan_spent
    }
    auto state = std::move(loan.state_);
    loan.sent_ = true;
    Buffer frame;
    if (!begin_message(state->topic, state->codec, frame)) {
        return detail::ready();  // nobody listens: the block goes back at once
    }
    finish_loaned(std::move(frame), *state);
    return room_after_send();
}

}  // namespace meshy

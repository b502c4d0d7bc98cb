// meshy::Loan and Node::loan / Node::send_loaned: messages built in the node's shared-memory pool
// (docs/shm.md, "Loans").
#include "meshy/loan.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

#include "common/drop_counter.hpp"
#include "meshy/log.hpp"
#include "meshy/node.hpp"
#include "node/loan_state.hpp"
#include "node/node_impl.hpp"

namespace meshy {
namespace {

// A msgpack message is an array of its arguments: a fixarray of one, then that argument's bin 32
// header (the marker, then the length big-endian); the loan's bytes are the bin's.
constexpr std::size_t msgpack_bin_head = 6;

void write_bin_head(std::span<std::byte> at, std::size_t size) {
    at[0] = std::byte{0x91};
    at[1] = std::byte{0xc6};
    for (std::size_t i = 0; i < 4; ++i) {
        at[2 + i] = std::byte(static_cast<unsigned char>(size >> (8 * (3 - i))));
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

namespace detail {

/// What Node::loan and loan_blocking share: the checks, then one try at a block at a time.
class LoanRequest {
public:
    LoanRequest(NodeImpl& impl, std::string topic, std::size_t bytes, const LoanOptions& options)
        : pool_(impl.loan_pool()), topic_(std::move(topic)), bytes_(bytes), codec_(options.codec) {
        if (topic_.empty() || topic_.size() > 0xffff) {
            throw Error(errc::invalid_argument, "topic name must have 1 to 65535 bytes");
        }
        if (codec_ != CodecId::raw && codec_ != CodecId::msgpack) {
            throw Error(errc::invalid_argument, "a loan's codec is raw or msgpack, not " + describe_codec(codec_));
        }
        if (codec_ == CodecId::msgpack && bytes > 0xffffffffu) {
            throw Error(errc::invalid_argument, "a msgpack bin holds at most 4 GiB");
        }
        head_ = codec_ == CodecId::msgpack ? msgpack_bin_head : 0;
        size_ = std::max<std::size_t>(head_ + bytes, 1);
        if (!pool_->fits(size_)) {
            throw Error(errc::invalid_argument,
                        "a loan of " + std::to_string(bytes) + " bytes does not fit the loan pool (" +
                            std::to_string(pool_->size()) + " bytes, NodeOptions::shm_pool_bytes)");
        }
        std::string error;
        if (!pool_->ready(error)) {
            throw Error(errc::io_error, "the loan pool: " + error);
        }
        wait_ = impl.options().outbox_full == OutboxFull::wait;
        running_ = [&impl] {
            return impl.running();
        };
    }

    /// A block now, or (OutboxFull::wait) nothing with `woken` kept to be called once one may be
    /// free. @throws Error(errc::pool_exhausted) without room under drop_oldest; not_running.
    std::optional<Loan> try_take(std::function<void()> woken) {
        if (!running_() || pool_->stopped()) {
            throw Error(errc::not_running, "loan('" + topic_ + "')");
        }
        auto block = pool_->allocate(size_, wait_ ? std::move(woken) : nullptr);
        if (!block) {
            if (!wait_) {
                warn_refused(topic_);
                throw Error(errc::pool_exhausted, "loan of " + std::to_string(bytes_) + " bytes on '" + topic_ +
                                                      "': listeners still hold earlier loans");
            }
            return std::nullopt;
        }
        if (head_ != 0) {
            write_bin_head(pool_->bytes(*block), bytes_);
        }
        return Loan(std::make_shared<LoanState>(pool_, *block, topic_, codec_, head_));
    }

private:
    std::shared_ptr<ShmLoanPool> pool_;
    std::string topic_;
    std::size_t bytes_;
    CodecId codec_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    bool wait_ = false;
    std::function<bool()> running_;
};

}  // namespace detail

asio::awaitable<Loan> Node::loan(std::string topic, std::size_t bytes, LoanOptions options) {
    detail::LoanRequest request(*impl_, std::move(topic), bytes, options);
    for (;;) {
        // Waits for a block to be freed (a listener lets go, or its link closes) or the node to
        // stop: never longer than the node runs, and never blocking a thread.
        auto freed = std::make_shared<asio::experimental::concurrent_channel<void(std::error_code, int)>>(
            co_await asio::this_coro::executor, 1);
        if (auto loan = request.try_take([freed] { freed->try_send(std::error_code{}, 0); })) {
            co_return std::move(*loan);
        }
        co_await freed->async_receive(asio::experimental::as_tuple(asio::use_awaitable));
    }
}

Loan Node::loan_blocking(std::string topic, std::size_t bytes, LoanOptions options) {
    detail::LoanRequest request(*impl_, std::move(topic), bytes, options);
    struct Bell {
        std::mutex mutex;
        std::condition_variable rung;
        bool ringing = false;
    };
    auto bell = std::make_shared<Bell>();
    for (;;) {
        auto loan = request.try_take([bell] {
            std::lock_guard lock(bell->mutex);
            bell->ringing = true;
            bell->rung.notify_all();
        });
        if (loan) {
            return std::move(*loan);
        }
        if (impl_->on_own_thread()) {
            // Only this thread could free a block (its listeners' messages): waiting would never end.
            throw Error(errc::would_deadlock, "loan_blocking with a full pool on the node's own thread; use loan()");
        }
        std::unique_lock lock(bell->mutex);
        bell->rung.wait(lock, [&] { return bell->ringing; });
        bell->ringing = false;
    }
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
    finish_loaned(std::move(frame), *state, true);
    return room_after_send();
}

void Node::send_loaned_blocking(Loan&& loan) {
    if (!loan.state_) {
        (void)loan.state();  // throws loan_spent
    }
    auto state = std::move(loan.state_);
    loan.sent_ = true;
    Buffer frame;
    if (begin_message(state->topic, state->codec, frame)) {
        finish_loaned(std::move(frame), *state, false);
    }
}

}  // namespace meshy

// Internal: the calls this node is waiting on: their deadlines, and the replies that end them.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/recycling_allocator.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "meshy/error.hpp"
#include "meshy/message.hpp"
#include "node/peer_links.hpp"
#include "transport/connection.hpp"

namespace meshy::detail {

/// How a call ended: `reply`, or an error code with its text in `reply.bytes` (or none).
struct CallOutcome {
    std::error_code ec;
    RawPayload reply;
};

/// A failed call's outcome, with `text` for its error.
CallOutcome failed_call(errc code, const std::string& text);

/// The suspended caller of one call. Completed once: by the reply, the timeout, a lost provider
/// or stop().
class CallWaiter {
public:
    virtual ~CallWaiter() = default;
    // A waiter lives for one call: Asio's per-thread recycling allocator keeps its memory for the
    // next one.
    static void* operator new(std::size_t size) { return asio::recycling_allocator<std::byte>().allocate(size); }
    static void operator delete(void* p, std::size_t size) {
        asio::recycling_allocator<std::byte>().deallocate(static_cast<std::byte*>(p), size);
    }
    /// Resumes the caller on its executor: at once when `may_run_here` and this thread runs that
    /// executor (never with a lock held), else posted.
    virtual void complete(CallOutcome outcome, bool may_run_here) = 0;
};

/// The reply of a call that ended, or throws its failure as meshy::Error (a timeout says after how long).
RawPayload take_reply(CallOutcome&& outcome, const std::string& service, std::chrono::milliseconds timeout);

/// A CallWaiter for an asio completion handler of signature void(std::exception_ptr, RawPayload)
/// (the caller's coroutine): the reply, or the call's failure as an Error.
template <class Handler>
class CallWaiterFor final : public CallWaiter {
public:
    CallWaiterFor(Handler handler, std::string service, std::chrono::milliseconds timeout)
        : handler_(std::move(handler)), service_(std::move(service)), timeout_(timeout) {}
    void complete(CallOutcome outcome, bool may_run_here) override {
        std::exception_ptr error;
        RawPayload reply;
        try {
            reply = take_reply(std::move(outcome), service_, timeout_);
        } catch (...) {
            error = std::current_exception();
        }
        auto executor = asio::get_associated_executor(handler_);
        if (may_run_here) {
            // The reader that took the reply runs the caller's io_context on this thread: resume
            // it here, as dispatch() would, without wrapping it in a function object first.
            if (const auto* io = executor.template target<asio::io_context::executor_type>();
                io && io->running_in_this_thread()) {
                std::move(handler_)(error, std::move(reply));
                return;
            }
        }
        auto resume = [handler = std::move(handler_), error, reply = std::move(reply)]() mutable {
            std::move(handler)(error, std::move(reply));
        };
        if (may_run_here) {
            asio::dispatch(executor, std::move(resume));
        } else {
            asio::post(executor, std::move(resume));
        }
    }

    const std::string& service() const noexcept { return service_; }

private:
    Handler handler_;
    std::string service_;
    std::chrono::milliseconds timeout_;
};

/// The pending calls. Its own lock, taken before a PeerLink's.
class Calls {
public:
    explicit Calls(asio::any_io_executor executor);

    /// Registers a call to the peer of `link` and sends its request (on the link's connection, or
    /// parked in the link while it is dialed). `request` is kept to take the reply when it fits.
    void start(std::unique_ptr<CallWaiter> waiter,
               PeerLinks& links,
               PeerLink& link,
               std::string_view service,
               CodecId codec,
               Buffer& request,
               std::chrono::milliseconds timeout);
    /// A reply frame's body read by `conn`. Only the connection this node dialed to the provider
    /// asked may answer a call. @returns false for a malformed body.
    bool on_reply(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body);
    /// Fails the calls sent over `conn`.
    void fail_connection(const Connection* conn, errc code, const std::string& why);
    /// Fails the calls to `peer_id`.
    void fail_peer(std::string_view peer_id, errc code, const std::string& why);
    /// Fails every call; later ones fail at once with errc::not_running.
    void stop();

private:
    struct Pending {
        std::unique_ptr<CallWaiter> waiter;
        std::string peer_id;               // the provider asked (only it may answer)
        const Connection* conn = nullptr;  // the connection carrying the request, once sent
        std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
        Buffer storage;  // the request's, once sent: the reply is copied into it (no allocation)
    };
    void fail_locked(const std::function<bool(const Pending&)>& which, errc code, const std::string& why);
    /// Makes timer_ fire by `deadline`.
    void arm_timer_locked(std::chrono::steady_clock::time_point deadline);
    /// Fails the calls whose deadline passed and arms the timer for the next one.
    void expire();

    std::mutex mutex_;  // guards everything below
    bool stopped_ = false;
    std::unordered_map<std::uint64_t, Pending> pending_;
    decltype(pending_)::node_type spare_;  // an answered call's node, for the next call (no allocation)
    std::uint64_t next_id_ = 1;
    // One timer for all pending calls, due at the earliest deadline (none: max).
    std::shared_ptr<asio::steady_timer> timer_;
    std::chrono::steady_clock::time_point timer_at_ = std::chrono::steady_clock::time_point::max();
    std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

}  // namespace meshy::detail

// Internal: the topics a node listens to. Each has a bounded inbox and a worker coroutine that
// feeds its callback; messages read from a connection are batched per read and per topic.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/drop_counter.hpp"
#include "meshy/node.hpp"
#include "transport/connection.hpp"
#include "transport/shm_loan_view.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {

/// A received (or self-delivered) message waiting for its listener. It lies in `bytes` (a receive
/// buffer, shared) and names its sender by `sender_id`.
///
/// Consecutive items in one buffer (a run: the messages of one read) hold one reference to it and
/// to the sender's id between them: the run's first item holds `frame` and `sender`, the others
/// hold null ones. Items leave a queue in order, and the one leaving hands the references to the
/// next item of its run (pass_refs), so the first item of a queue always holds them.
struct InboxItem {
    const Buffer* bytes = nullptr;
    SharedFrame frame;  // owns `bytes`; null while an earlier item of the run does
    wire::MessageLayout layout;
    CodecId codec{};
    std::uint64_t sent_at_ns = 0;
    const std::string* sender_id = nullptr;
    std::shared_ptr<const std::string> sender;  // owns `sender_id`, with `frame`
    std::size_t payload_size = 0;               // the payload ends here; the buffer may hold more frames
    // A loaned message (docs/shm.md): its payload lies in the sender's pool, not in `bytes` (which
    // holds its topic alone); dropping the view gives the block back to the sender.
    std::shared_ptr<const ShmLoanView> loan{};

    /// Hands this item's references to `next` when `next` is the following item of its run.
    void pass_refs(InboxItem& next) noexcept {
        if (frame && !next.frame && next.bytes == bytes) {
            next.frame = std::move(frame);
            next.sender = std::move(sender);
        }
    }
    /// Gives `next`, the following item of this item's run, references of its own too.
    void share_refs(InboxItem& next) const {
        if (frame && !next.frame && next.bytes == bytes) {
            next.frame = frame;
            next.sender = sender;
        }
    }
    /// An item for a whole message frame (`frame` holds nothing else) sent by `sender`.
    static InboxItem of_frame(const SharedFrame& frame,
                              std::string_view topic,
                              const std::shared_ptr<const std::string>& sender);
};

/// One listened topic: a bounded inbox and the worker coroutine that feeds the callback.
struct Subscription {
    /// @param one_thread only one thread runs `ex`, so the worker needs no strand of its own
    Subscription(
        asio::any_io_executor ex, std::string t, std::shared_ptr<ListenerFn> f, std::size_t cap, bool one_thread);
    std::string topic;
    std::mutex mutex;  // guards everything below except bell
    std::shared_ptr<ListenerFn> fn;
    // The inbox: items inbox[inbox_head..] in arrival order. A vector, so that the worker can take
    // them all at once (a swap) and neither side allocates once both vectors have grown.
    std::vector<InboxItem> inbox;
    std::size_t inbox_head = 0;
    // The buffer the newest item shares. Items of a listener that falls behind are copied instead
    // of pinning more receive buffers (items from the buffer already pinned share it still).
    const Buffer* last_pinned = nullptr;
    std::size_t capacity;
    bool idle = false;
    std::atomic<bool> stopped{false};  // written under mutex; read without it by the worker
    DropCounter drops;  // inbox drops; reported when they happen or it drains (at most once a second), and at the end
    asio::any_io_executor strand;  // a strand, or the node's executor itself (one thread)
    asio::experimental::concurrent_channel<void(std::error_code, int)> bell;

    std::size_t queued() const noexcept { return inbox.size() - inbox_head; }
    void clear_inbox() {
        inbox.clear();
        inbox_head = 0;
    }
    /// Ends the listener (under `mutex`). @returns its drops not reported yet, for a last report.
    std::uint64_t stop_locked();
};

/// The node's listened topics. Its own lock; callbacks never run under it.
class Subscriptions {
public:
    /// @param own_loop the executor is the node's own thread (one thread runs it)
    Subscriptions(asio::any_io_executor executor, std::size_t inbox_capacity, bool own_loop);

    /// Listens to `topic`, or replaces its callback. @returns true when the topic is new.
    bool listen(std::string topic, ListenerFn fn);
    /// @returns false when not listening.
    bool stop_listening(std::string_view topic);
    /// Ends every listener (no callback runs after it returns).
    void stop_all();
    /// The listened topics, sorted.
    std::vector<std::string> topics() const;
    bool contains(std::string_view topic) const;
    /// The subscription of `topic`, or null.
    std::shared_ptr<Subscription> find(std::string_view topic) const;
    /// Changes with every listen of a new topic and every stop_listening.
    std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

    /// Queues `item` for `sub`'s listener (dropping the oldest when its inbox is full).
    void deliver(const std::shared_ptr<Subscription>& sub, InboxItem item);
    /// A message frame's body read by `conn`: batched for its topic's listener until
    /// on_frames_done() (one lock and one wake-up a read), or handed to an idle plain listener at
    /// once on the node's own thread. Unknown topics are ignored (a sender's view is a moment old).
    /// @returns false for a malformed body.
    bool on_message(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body);
    /// The frames of one read were handed on: deliver the batch.
    void on_frames_done();
    /// A loaned message read by `conn` (after the messages of the read before it, in order).
    void on_loaned(const std::shared_ptr<Connection>& conn, LoanedMessage message);

private:
    void deliver(const std::shared_ptr<Subscription>& sub, std::vector<InboxItem>& items);
    /// With sub->mutex held: queues `item` (dropping the oldest when full; `compact`: copying it out
    /// of its receive buffer when the listener is behind). @returns drops to report.
    static std::uint64_t enqueue_locked(Subscription& sub, InboxItem&& item, bool compact);
    static void warn_inbox_drops(const Subscription& sub, std::uint64_t count);
    /// Logs what a listener of `sub` threw (call it in a catch block).
    static void log_listener_failure(const Subscription& sub);
    static void log_loan_lost(const Subscription& sub);
    static asio::awaitable<void> worker(std::shared_ptr<Subscription> sub);

    asio::any_io_executor exec_;
    std::size_t inbox_capacity_;
    bool own_loop_;
    std::atomic<std::uint64_t> generation_;
    mutable std::mutex mutex_;  // guards subs_
    std::map<std::string, std::shared_ptr<Subscription>, std::less<>> subs_;
    bool stopped_ = false;
};

}  // namespace meshy::detail

#include "node/subscriptions.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <utility>

#include "common/generation.hpp"
#include "common/rate_limited_log.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
// Inbox length from which received messages are copied out of the shared receive buffer.
constexpr std::size_t compact_backlog = 64;

/// The messages of one read for one subscription, delivered together (on_frames_done): one lock
/// and one wake-up for the lot. A reader flushes it before it waits, so it never spans two
/// connections; it holds its subscription only while it holds items.
struct ReceiveBatch {
    const Subscriptions* owner = nullptr;
    std::uint64_t generation = 0;
    std::string topic;
    std::shared_ptr<Subscription> sub;
    std::vector<InboxItem> items;
    // Set when the messages go straight to `sub`'s plain listener, on the thread that read them,
    // instead of through its inbox (see on_message).
    std::shared_ptr<ListenerFn> direct;
};
thread_local ReceiveBatch receive_batch;

}  // namespace

InboxItem InboxItem::of_frame(const SharedFrame& frame,
                              std::string_view topic,
                              const std::shared_ptr<const std::string>& sender) {
    wire::Message header;
    wire::decode_message(frame->bytes().subspan(wire::frame_prefix), header);
    const auto layout = wire::message_layout(topic);
    return InboxItem{frame.get(),       frame,        layout, header.codec,
                     header.sent_at_ns, sender.get(), sender, frame->size() - layout.payload_offset};
}

Subscription::Subscription(
    asio::any_io_executor ex, std::string t, std::shared_ptr<ListenerFn> f, std::size_t cap, bool one_thread)
    : topic(std::move(t)),
      fn(std::move(f)),
      capacity(cap),
      strand(one_thread ? ex : asio::make_strand(ex)),
      bell(strand, 1) {
}

std::uint64_t Subscription::stop_locked() {
    stopped = true;
    clear_inbox();
    bell.close();
    return drops.take();
}

Subscriptions::Subscriptions(asio::any_io_executor executor, std::size_t inbox_capacity, bool own_loop)
    : exec_(std::move(executor)), inbox_capacity_(inbox_capacity), own_loop_(own_loop), generation_(next_generation()) {
}

bool Subscriptions::listen(std::string topic, ListenerFn fn) {
    auto shared_fn = std::make_shared<ListenerFn>(std::move(fn));
    std::shared_ptr<Subscription> sub;
    {
        std::lock_guard lock(mutex_);
        if (stopped_) {
            throw Error(errc::not_running, "listen('" + topic + "')");
        }
        if (auto it = subs_.find(topic); it != subs_.end()) {
            std::lock_guard sl(it->second->mutex);
            it->second->fn = std::move(shared_fn);
            return false;
        }
        sub = std::make_shared<Subscription>(exec_, topic, std::move(shared_fn), inbox_capacity_, own_loop_);
        subs_.emplace(std::move(topic), sub);
        generation_.store(next_generation(), std::memory_order_release);
    }
    asio::co_spawn(sub->strand, worker(sub), asio::detached);
    return true;
}

bool Subscriptions::stop_listening(std::string_view topic) {
    std::shared_ptr<Subscription> sub;
    std::uint64_t unreported = 0;
    {
        std::lock_guard lock(mutex_);
        auto it = subs_.find(topic);
        if (it == subs_.end()) {
            return false;
        }
        sub = it->second;
        {
            std::lock_guard sl(sub->mutex);
            unreported = sub->stop_locked();
        }
        subs_.erase(it);
        generation_.store(next_generation(), std::memory_order_release);
    }
    warn_inbox_drops(*sub, unreported);
    return true;
}

void Subscriptions::stop_all() {
    std::vector<std::pair<std::shared_ptr<Subscription>, std::uint64_t>> last_drops;
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
        for (auto& [topic, sub] : subs_) {
            std::lock_guard sl(sub->mutex);
            if (const auto unreported = sub->stop_locked()) {
                last_drops.emplace_back(sub, unreported);
            }
        }
        subs_.clear();
        generation_.store(next_generation(), std::memory_order_release);
    }
    for (const auto& [sub, count] : last_drops) {
        warn_inbox_drops(*sub, count);
    }
}

std::vector<std::string> Subscriptions::topics() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    out.reserve(subs_.size());
    for (const auto& [t, s] : subs_) {
        out.push_back(t);
    }
    return out;
}

bool Subscriptions::contains(std::string_view topic) const {
    std::lock_guard lock(mutex_);
    return subs_.contains(topic);
}

std::shared_ptr<Subscription> Subscriptions::find(std::string_view topic) const {
    std::lock_guard lock(mutex_);
    const auto it = subs_.find(topic);
    return it != subs_.end() ? it->second : nullptr;
}

std::uint64_t Subscriptions::enqueue_locked(Subscription& sub, InboxItem&& item, bool compact) {
    std::uint64_t report = 0;
    if (sub.queued() >= sub.capacity) {
        // Drop the oldest; its references go to the next item of its run (maybe this one).
        InboxItem& oldest = sub.inbox[sub.inbox_head++];
        oldest.pass_refs(sub.inbox_head < sub.inbox.size() ? sub.inbox[sub.inbox_head] : item);
        oldest = InboxItem{};
        report = sub.drops.drop();
        if (sub.inbox_head >= sub.capacity) {
            sub.inbox.erase(sub.inbox.begin(), sub.inbox.begin() + static_cast<std::ptrdiff_t>(sub.inbox_head));
            sub.inbox_head = 0;
        }
    }
    // Items share the receive buffer they arrived in. A listener that falls behind would keep
    // many such buffers alive for a few bytes each: its items get compact copies instead.
    if (compact && item.frame && !item.loan && item.bytes != sub.last_pinned && sub.queued() >= compact_backlog &&
        item.bytes->size() > 2 * (item.payload_size + item.layout.topic_size + 64)) {
        auto copy = std::make_shared<Buffer>();
        const auto* from = item.bytes->data() + item.layout.topic_offset;
        copy->append(from, item.layout.payload_offset + item.payload_size - item.layout.topic_offset);
        item.layout.payload_offset -= item.layout.topic_offset;
        item.layout.topic_offset = 0;
        item.bytes = copy.get();
        item.frame = std::move(copy);
    }
    sub.last_pinned = item.bytes;
    sub.inbox.push_back(std::move(item));
    return report;
}

void Subscriptions::deliver(const std::shared_ptr<Subscription>& sub, InboxItem item) {
    bool wake = false;
    std::uint64_t report = 0;
    {
        std::lock_guard lock(sub->mutex);
        if (sub->stopped) {
            return;
        }
        report = enqueue_locked(*sub, std::move(item), true);
        wake = std::exchange(sub->idle, false);
    }
    warn_inbox_drops(*sub, report);
    if (wake) {
        sub->bell.try_send(std::error_code{}, 0);
    }
}

void Subscriptions::deliver(const std::shared_ptr<Subscription>& sub, std::vector<InboxItem>& items) {
    bool wake = false;
    std::uint64_t report = 0;
    {
        std::lock_guard lock(sub->mutex);
        if (!sub->stopped) {
            // A listener that is behind gets compact copies: then every item holds references of
            // its own first (a copied item would otherwise split its run).
            const bool behind = sub->queued() >= compact_backlog;
            if (behind) {
                for (std::size_t i = 0; i + 1 < items.size(); ++i) {
                    items[i].share_refs(items[i + 1]);
                }
            }
            for (auto& item : items) {
                report += enqueue_locked(*sub, std::move(item), behind);
            }
            wake = std::exchange(sub->idle, false);
        }
    }
    items.clear();
    warn_inbox_drops(*sub, report);
    if (wake) {
        sub->bell.try_send(std::error_code{}, 0);
    }
}

void Subscriptions::warn_inbox_drops(const Subscription& sub, std::uint64_t count) {
    if (count) {
        log(LogLevel::warn, "listener of '" + sub.topic + "' is slow: dropped " + std::to_string(count) +
                                " message(s) from its full inbox");
    }
}

void Subscriptions::log_listener_failure(const Subscription& sub) {
    try {
        throw;
    } catch (const Error& e) {
        log(LogLevel::warn, "dropped a message on '" + sub.topic + "': " + e.what());
    } catch (const std::exception& e) {
        log(LogLevel::warn, "listener of '" + sub.topic + "' threw: " + e.what());
    } catch (...) {
        log(LogLevel::warn, "listener of '" + sub.topic + "' threw a non-standard exception");
    }
}

asio::awaitable<void> Subscriptions::worker(std::shared_ptr<Subscription> sub) {
    std::shared_ptr<ListenerFn> fn;  // copied again only when listen() replaced it
    std::vector<InboxItem> batch;    // taken from the inbox (all of it, for a plain callback)
    for (;;) {
        std::size_t head = 0;
        std::uint64_t unreported = 0;
        batch.clear();
        {
            std::lock_guard lock(sub->mutex);
            if (sub->stopped.load(std::memory_order_relaxed)) {
                co_return;
            }
            if (sub->queued() == 0) {
                sub->idle = true;
                unreported = sub->drops.take_due();
            } else {
                if (fn != sub->fn) {
                    fn = sub->fn;
                }
                if (fn->plain) {
                    // A plain callback takes every queued item at once (one lock for all).
                    std::swap(batch, sub->inbox);
                    head = std::exchange(sub->inbox_head, 0);
                } else {
                    // A coroutine may be slow: it takes one at a time, so that its inbox keeps
                    // dropping the oldest while it works. The item keeps its references, and the
                    // rest of its run gets its own.
                    if (sub->inbox_head + 1 < sub->inbox.size()) {
                        sub->inbox[sub->inbox_head].share_refs(sub->inbox[sub->inbox_head + 1]);
                    }
                    batch.push_back(std::move(sub->inbox[sub->inbox_head++]));
                    if (sub->inbox_head == sub->inbox.size()) {
                        sub->clear_inbox();
                    } else if (sub->inbox_head >= compact_backlog && 2 * sub->inbox_head >= sub->inbox.size()) {
                        sub->inbox.erase(sub->inbox.begin(),
                                         sub->inbox.begin() + static_cast<std::ptrdiff_t>(sub->inbox_head));
                        sub->inbox_head = 0;
                    }
                }
            }
        }
        if (batch.empty()) {
            warn_inbox_drops(*sub, unreported);
            auto [ec, unused] = co_await sub->bell.async_receive(use_tuple);
            (void)unused;
            if (ec) {
                co_return;
            }
            continue;
        }
        for (std::size_t i = head; i < batch.size(); ++i) {
            if (sub->stopped.load(std::memory_order_relaxed)) {
                co_return;  // stop_listening() or stop(): no callback after it
            }
            InboxItem& item = batch[i];
            const auto* base = item.bytes->data();
            RawMessage m;
            m.topic = std::string_view(reinterpret_cast<const char*>(base + item.layout.topic_offset),
                                       item.layout.topic_size);
            m.payload = std::span<const std::byte>(base + item.layout.payload_offset, item.payload_size);
            if (item.loan) {
                if (!item.loan->intact()) {
                    // Its link closed while it waited: the sender took the block back (or died).
                    log_loan_lost(*sub);
                    item.frame.reset();
                    item.loan.reset();
                    continue;
                }
                m.payload = item.loan->payload();
                m.payload_owner = item.loan;
            }
            m.sender_id = *item.sender_id;
            m.codec = item.codec;
            m.sent_at_ns = item.sent_at_ns;
            try {
                if (fn->plain) {
                    fn->plain(m);
                } else {
                    co_await fn->coroutine(m);
                }
            } catch (...) {
                log_listener_failure(*sub);
            }
            // Release the receive buffer now (the reader reuses a buffer nobody refers to), unless
            // the rest of the run still needs it.
            if (i + 1 < batch.size()) {
                item.pass_refs(batch[i + 1]);
            }
            item.frame.reset();
            item.sender.reset();
            item.loan.reset();
        }
    }
}

void Subscriptions::log_loan_lost(const Subscription& sub) {
    log_rate_limited(LogLevel::warn, "loaned message lost",
                     "dropped a loaned message on '" + sub.topic + "': its link closed before the listener took it");
}

void Subscriptions::on_loaned(const std::shared_ptr<Connection>& conn, LoanedMessage message) {
    on_frames_done();  // the messages read before it go first
    auto sub = find(message.topic);
    if (!sub) {
        return;  // the sender's view of our topics is a moment old; the view goes, the block with it
    }
    if (own_loop_) {
        // As on_message() does: an idle plain listener on the node's own thread is called right here.
        std::shared_ptr<ListenerFn> direct;
        {
            std::lock_guard sl(sub->mutex);
            if (!sub->stopped.load(std::memory_order_relaxed) && sub->fn->plain && sub->idle && sub->queued() == 0) {
                direct = sub->fn;
            }
        }
        if (direct) {
            RawMessage raw;
            raw.topic = message.topic;
            raw.payload = message.view->payload();
            raw.payload_owner = message.view;
            raw.sender_id = *conn->peer_id();
            raw.codec = message.codec;
            raw.sent_at_ns = message.sent_at_ns;
            try {
                direct->plain(raw);
            } catch (...) {
                log_listener_failure(*sub);
            }
            return;
        }
    }
    // The item's own small buffer holds the topic; the payload stays in the pool.
    auto topic = std::make_shared<Buffer>();
    topic->append(message.topic.data(), message.topic.size());
    InboxItem item;
    item.bytes = topic.get();
    item.frame = std::move(topic);
    item.layout.topic_size = message.topic.size();
    item.layout.payload_offset = message.topic.size();
    item.codec = message.codec;
    item.sent_at_ns = message.sent_at_ns;
    item.sender_id = conn->peer_id().get();
    item.sender = conn->peer_id();
    item.loan = std::move(message.view);
    deliver(sub, std::move(item));
}

void Subscriptions::on_frames_done() {
    ReceiveBatch& batch = receive_batch;
    if (batch.sub) {
        if (!batch.items.empty()) {
            deliver(batch.sub, batch.items);
        }
        batch.sub.reset();
        batch.direct.reset();
    }
}

bool Subscriptions::on_message(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body) {
    wire::Message m;
    if (!wire::decode_message(body, m)) {
        return false;
    }
    ReceiveBatch& batch = receive_batch;
    const auto generation = generation_.load(std::memory_order_acquire);
    if (!batch.sub || batch.owner != this || batch.generation != generation || batch.topic != m.topic) {
        on_frames_done();  // another topic (or node): the batch so far goes first
        {
            std::lock_guard lock(mutex_);
            auto it = subs_.find(m.topic);
            if (it == subs_.end()) {
                return true;  // the sender's view of our topics is a moment old
            }
            batch.owner = this;
            batch.generation = generation_.load(std::memory_order_relaxed);
            batch.topic.assign(m.topic);
            batch.sub = it->second;
        }
        if (own_loop_) {
            // On the node's own thread the worker runs on this very thread, so it cannot run
            // meanwhile. A plain listener whose worker waits with nothing queued (not inside a
            // coroutine callback that listen() replaced) is called right here, and spared the
            // inbox and the hand-over. Its messages keep their order.
            std::lock_guard sl(batch.sub->mutex);
            if (batch.sub->fn->plain && batch.sub->idle && batch.sub->queued() == 0) {
                batch.direct = batch.sub->fn;
            }
        }
    }
    if (batch.direct) {
        Subscription& sub = *batch.sub;
        if (sub.stopped.load(std::memory_order_relaxed)) {
            return true;  // stop_listening() or stop(): no callback after it
        }
        RawMessage raw;
        raw.topic = m.topic;
        raw.payload = m.payload;
        raw.sender_id = *conn->peer_id();
        raw.codec = m.codec;
        raw.sent_at_ns = m.sent_at_ns;
        try {
            batch.direct->plain(raw);
        } catch (...) {
            log_listener_failure(sub);
        }
        return true;
    }
    // The item shares the connection's receive buffer: no copy.
    const auto& buffer = conn->read_buffer();
    const auto body_offset = static_cast<std::size_t>(body.data() - buffer->data());
    // The first item of a run (the messages of one read) holds the references for the run.
    const bool run_goes_on = !batch.items.empty() && batch.items.back().bytes == buffer.get();
    InboxItem& item = batch.items.emplace_back();
    item.bytes = buffer.get();
    item.sender_id = conn->peer_id().get();
    if (!run_goes_on) {
        item.frame = buffer;
        item.sender = conn->peer_id();
    }
    item.layout.topic_offset = body_offset + wire::message_header;
    item.layout.topic_size = m.topic.size();
    item.layout.payload_offset = body_offset + wire::message_header + m.topic.size();
    item.payload_size = m.payload.size();
    item.codec = m.codec;
    item.sent_at_ns = m.sent_at_ns;
    return true;
}

}  // namespace meshy::detail

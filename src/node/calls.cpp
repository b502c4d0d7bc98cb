#include "node/calls.hpp"

#include "common/system.hpp"
#include "meshy/log.hpp"
#include "wire/frame.hpp"

namespace meshy::detail {
namespace {
// A call's request buffer takes its reply when that fills more than half of it, or leaves at most
// this many bytes unused: a small reply never holds a large request's memory.
constexpr std::size_t reuse_slack = 4096;
}  // namespace

CallOutcome failed_call(errc code, const std::string& text) {
    CallOutcome outcome;
    outcome.ec = make_error_code(code);
    outcome.reply.codec = CodecId::raw;
    outcome.reply.bytes.append(text.data(), text.size());
    return outcome;
}

RawPayload take_reply(CallOutcome&& outcome, const std::string& service, std::chrono::milliseconds timeout) {
    if (!outcome.ec) {
        return std::move(outcome.reply);
    }
    const auto& bytes = outcome.reply.bytes;
    std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (outcome.ec == make_error_code(errc::timeout) && text.empty()) {
        text = "service '" + service + "' did not reply within " + std::to_string(timeout.count()) + " ms";
    }
    if (outcome.ec.category() == error_category()) {
        throw Error(static_cast<errc>(outcome.ec.value()), text.empty() ? "service '" + service + "'" : text);
    }
    throw Error(errc::not_running, "call to '" + service + "' abandoned: " + outcome.ec.message());
}

Calls::Calls(asio::any_io_executor executor) : timer_(std::make_shared<asio::steady_timer>(std::move(executor))) {
}

void Calls::start(std::unique_ptr<CallWaiter> waiter,
                  PeerLinks& links,
                  PeerLink& link,
                  std::string_view service,
                  CodecId codec,
                  Buffer& request,
                  std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (stopped_) {
        lock.unlock();
        waiter->complete(failed_call(errc::not_running, "call('" + std::string(service) + "')"), false);
        return;
    }
    const std::uint64_t call_id = next_id_++;
    Pending pending{std::move(waiter), link.id, nullptr, {}, {}};
    if (timeout.count() > 0) {
        // Never early, at most a tick late, and a quarter of a precise clock read.
        pending.deadline = coarse_now() + coarse_resolution() + timeout;
        arm_timer_locked(pending.deadline);
    }
    {
        std::lock_guard link_lock(link.mutex);
        if (link.connected()) {
            // The request's header and the caller's bytes go out in one gathered write.
            thread_local Buffer head;
            head.clear();
            wire::encode_request_header(head, call_id, codec, service, request.size());
            link.ready->send(head.bytes(), request.bytes(), SendMode::request);
            pending.conn = link.ready.get();
        } else {
            auto frame = std::make_shared<Buffer>();
            wire::encode_request(*frame, call_id, codec, service, request.bytes());
            links.deliver_locked(link, frame, &pending.conn, true);
        }
    }
    pending.storage = std::move(request);  // sent (or copied): free for the reply
    if (spare_.empty()) {
        pending_.emplace(call_id, std::move(pending));
    } else {
        spare_.key() = call_id;
        spare_.mapped() = std::move(pending);
        pending_.insert(std::move(spare_));
    }
}

bool Calls::on_reply(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body) {
    wire::Reply r;
    if (!wire::decode_reply(body, r)) {
        return false;
    }
    std::unique_ptr<CallWaiter> waiter;
    Buffer storage;
    {
        std::lock_guard lock(mutex_);
        auto it = pending_.find(r.call_id);
        // Only the provider asked may answer, on the connection this node dialed to it.
        if (it == pending_.end() || !conn->outbound() ||
            (it->second.conn != conn.get() && it->second.peer_id != conn->peer().id)) {
            log(LogLevel::debug, "ignoring a reply to unknown or expired call " + std::to_string(r.call_id));
            return true;
        }
        auto node = pending_.extract(it);
        waiter = std::move(node.mapped().waiter);
        storage = std::move(node.mapped().storage);
        node.mapped() = Pending{};
        spare_ = std::move(node);
    }
    CallOutcome outcome;
    outcome.reply.codec = r.codec;
    // The request's buffer holds the reply when it fits without wasting much of it.
    if (storage.capacity() >= r.payload.size() && storage.capacity() <= 2 * r.payload.size() + reuse_slack) {
        storage.clear();
        outcome.reply.bytes = std::move(storage);
    }
    outcome.reply.bytes.append(r.payload.data(), r.payload.size());
    switch (r.status) {
        case wire::ReplyStatus::ok:
            break;
        case wire::ReplyStatus::remote_error:
        case wire::ReplyStatus::bad_request:
            outcome.ec = make_error_code(errc::remote_error);
            break;
        case wire::ReplyStatus::no_such_service:
            outcome.ec = make_error_code(errc::no_provider);
            break;
    }
    // No lock is held here: a caller on this thread resumes at once (no trip through the queue).
    waiter->complete(std::move(outcome), true);
    return true;
}

void Calls::fail_connection(const Connection* conn, errc code, const std::string& why) {
    std::lock_guard lock(mutex_);
    fail_locked([&](const Pending& c) { return c.conn == conn; }, code, why);
}

void Calls::fail_peer(std::string_view peer_id, errc code, const std::string& why) {
    std::lock_guard lock(mutex_);
    fail_locked([&](const Pending& c) { return c.peer_id == peer_id; }, code, why);
}

void Calls::stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    *alive_ = false;
    for (auto& [id, call] : pending_) {
        call.waiter->complete(CallOutcome{make_error_code(errc::not_running), {}}, false);
    }
    pending_.clear();
    timer_->cancel();
}

void Calls::fail_locked(const std::function<bool(const Pending&)>& which, errc code, const std::string& why) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (which(it->second)) {
            it->second.waiter->complete(failed_call(code, why), false);
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
}

void Calls::arm_timer_locked(std::chrono::steady_clock::time_point deadline) {
    if (deadline >= timer_at_) {
        return;  // it fires earlier already; calls mostly share one timeout, so this is the rule
    }
    timer_at_ = deadline;
    timer_->expires_at(deadline);
    timer_->async_wait([this, alive = alive_, timer = timer_](const std::error_code& ec) {
        if (ec || !*alive) {
            return;  // re-armed earlier, or stopped
        }
        expire();
    });
}

void Calls::expire() {
    std::vector<std::unique_ptr<CallWaiter>> expired;
    {
        std::lock_guard lock(mutex_);
        if (stopped_) {
            return;
        }
        timer_at_ = std::chrono::steady_clock::time_point::max();
        const auto now = std::chrono::steady_clock::now();
        auto next = std::chrono::steady_clock::time_point::max();
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->second.deadline <= now) {
                expired.push_back(std::move(it->second.waiter));
                it = pending_.erase(it);
            } else {
                next = std::min(next, it->second.deadline);
                ++it;
            }
        }
        if (next != std::chrono::steady_clock::time_point::max()) {
            arm_timer_locked(next);
        }
    }
    for (auto& waiter : expired) {
        waiter->complete(CallOutcome{make_error_code(errc::timeout), {}}, false);  // the caller words it
    }
}

}  // namespace meshy::detail

#include "node/services.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "wire/frame.hpp"

namespace meshy::detail {
namespace {
// Requests from this size on are handed to their handler in the receive buffer, without a copy.
constexpr std::size_t share_request_min = 16u * 1024;
}  // namespace

std::string current_failure() {
    try {
        throw;
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}

Services::Services(asio::any_io_executor executor, std::string node_name)
    : exec_(std::move(executor)), node_name_(std::move(node_name)) {
}

bool Services::add(std::string service, ServiceFn fn) {
    auto shared = std::make_shared<ServiceFn>(std::move(fn));
    std::lock_guard lock(mutex_);
    last_fn_.reset();
    last_service_.clear();
    auto [it, is_new] = services_.try_emplace(std::move(service), shared);
    if (!is_new) {
        it->second = std::move(shared);
    }
    return is_new;
}

bool Services::remove(std::string_view service) {
    std::lock_guard lock(mutex_);
    auto it = services_.find(service);
    if (it == services_.end()) {
        return false;
    }
    services_.erase(it);
    last_fn_.reset();
    last_service_.clear();
    return true;
}

void Services::clear() {
    std::lock_guard lock(mutex_);
    services_.clear();
    last_fn_.reset();
    last_service_.clear();
}

std::vector<std::string> Services::names() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    out.reserve(services_.size());
    for (const auto& [s, f] : services_) {
        out.push_back(s);
    }
    return out;
}

bool Services::contains(std::string_view service) const {
    std::lock_guard lock(mutex_);
    return services_.contains(service);
}

std::shared_ptr<ServiceFn> Services::find(std::string_view service) const {
    std::lock_guard lock(mutex_);
    const auto it = services_.find(service);
    return it != services_.end() ? it->second : nullptr;
}

bool Services::on_request(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body) {
    wire::Request r;
    if (!wire::decode_request(body, r)) {
        return false;
    }
    std::shared_ptr<ServiceFn> fn;
    {
        std::lock_guard lock(mutex_);
        if (!last_fn_ || last_service_ != r.service) {
            const auto it = services_.find(r.service);
            last_fn_ = it != services_.end() ? it->second : nullptr;
            last_service_.assign(r.service);
        }
        fn = last_fn_;
    }
    if (!fn) {
        auto reply = std::make_shared<Buffer>();
        const std::string text = "service '" + std::string(r.service) + "' is not provided by " + node_name_;
        wire::encode_reply(*reply, r.call_id, wire::ReplyStatus::no_such_service, CodecId::raw,
                           std::as_bytes(std::span(text.data(), text.size())));
        conn->send(std::move(reply), SendMode::control);
        return true;
    }
    if (fn->plain) {
        // Runs here, on the reader, with the request where it was read (like a plain listener).
        RawMessage m;
        m.topic = r.service;
        m.codec = r.codec;
        m.payload = r.payload;
        m.sender_id = conn->peer().id;
        try {
            send_reply(*conn, r.call_id, fn->plain(m));
        } catch (...) {
            send_failure(*conn, r.call_id, current_failure());
        }
        return true;
    }
    // A large request is read where it arrived (the coroutine shares the receive buffer); a small
    // one is copied (into the coroutine), so slow handlers never pin whole receive buffers.
    std::shared_ptr<const Buffer> shared;
    Buffer copy;
    if (r.payload.size() < share_request_min) {
        copy.append(r.payload.data(), r.payload.size());
    } else {
        shared = conn->read_buffer();
    }
    asio::co_spawn(
        exec_,
        [conn, fn, call_id = r.call_id, codec = r.codec, service = std::string(r.service), shared = std::move(shared),
         copy = std::move(copy), payload = r.payload]() -> asio::awaitable<void> {
            RawMessage m;
            m.topic = service;
            m.codec = codec;
            m.payload = shared ? payload : copy.bytes();
            m.sender_id = conn->peer().id;
            std::string failure;
            try {
                RawPayload result = co_await fn->coroutine(m);
                send_reply(*conn, call_id, result);
                co_return;
            } catch (...) {
                failure = current_failure();  // a catch block may not co_await; the reply needs none
            }
            send_failure(*conn, call_id, failure);
        },
        asio::detached);
    return true;
}

void Services::send_reply(Connection& conn, std::uint64_t call_id, const RawPayload& result) {
    // The reply's header and the handler's bytes go out in one gathered write.
    thread_local Buffer head;
    head.clear();
    wire::encode_reply_header(head, call_id, wire::ReplyStatus::ok, result.codec, result.bytes.size());
    conn.send(head.bytes(), result.bytes.bytes(), SendMode::reply);
}

void Services::send_failure(Connection& conn, std::uint64_t call_id, const std::string& what) {
    auto reply = std::make_shared<Buffer>();
    wire::encode_reply(*reply, call_id, wire::ReplyStatus::remote_error, CodecId::raw,
                       std::as_bytes(std::span(what.data(), what.size())));
    conn.send(std::move(reply), SendMode::reply);
}

}  // namespace meshy::detail

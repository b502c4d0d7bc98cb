// meshy::Node: the public face of NodeImpl. Templates in node.hpp encode and decode; everything
// here is type-erased.
#include "meshy/node.hpp"

#include <pthread.h>

#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <thread>

#include "meshy/log.hpp"
#include "node/loan_state.hpp"
#include "node/node_impl.hpp"

namespace meshy {

namespace detail {

asio::awaitable<void> ready() {
    // Completes through the awaiting coroutine's executor, like any Asio operation that is done at once.
    co_await asio::dispatch(asio::use_awaitable);
}

/// The event loop of a node built without an executor: an io_context and the thread running it.
/// Destroying it destroys the coroutine frames still pending, which releases what they hold.
struct OwnLoop {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::thread thread;

    void start() {
        thread = std::thread([this] {
            no_cancellation();
            for (;;) {
                try {
                    io.run();
                    return;
                } catch (const std::exception& e) {
                    log(LogLevel::error, std::string("uncaught exception on the node thread: ") + e.what());
                }
            }
        });
    }
    /// Nothing cancels the node's thread (it ends with stop()). Saying so lets glibc's cancellation
    /// points, the reactor's `recv` and `epoll_wait` among them, skip the two atomic updates of the
    /// thread's cancellation state they make around each system call in a process of several
    /// threads: with cancellation disabled, the asynchronous type (inert then) is the one that
    /// needs no update.
    static void no_cancellation() {
        int previous = 0;
        ::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &previous);
        ::pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &previous);
    }
    /// Ends the loop, and joins it unless called from the loop itself.
    void stop() {
        work.reset();
        io.stop();
        if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) {
            thread.join();
        }
    }
};

}  // namespace detail

namespace {

/// Waiting on the node's own thread would wait for that thread: refused.
void refuse_on_own_thread(const detail::NodeImpl& impl, const char* what) {
    if (impl.on_own_thread()) {
        throw Error(errc::would_deadlock, std::string(what) + " on the node's own thread; use the coroutine form");
    }
}

template <class T>
T run_blocking(detail::NodeImpl& impl, const char* what, asio::awaitable<T> op) {
    refuse_on_own_thread(impl, what);
    return asio::co_spawn(impl.executor(), std::move(op), asio::use_future).get();
}

}  // namespace

Node::Node(NodeOptions options) : loop_(std::make_unique<detail::OwnLoop>()) {
    impl_ = std::make_shared<detail::NodeImpl>(loop_->io.get_executor(), std::move(options), true);
    impl_->start();
    loop_->start();
}

Node::Node(asio::any_io_executor executor, NodeOptions options)
    : impl_(std::make_shared<detail::NodeImpl>(std::move(executor), std::move(options), false)) {
    impl_->start();
}

Node::~Node() {
    stop();
    impl_.reset();
    if (loop_ && loop_->thread.joinable()) {
        // Destroyed from one of its own callbacks: the loop can be neither joined nor destroyed here.
        loop_->thread.detach();
        (void)loop_.release();
    }
    loop_.reset();  // destroys pending coroutine frames, and with them the last references to impl
}

void Node::stop() {
    impl_->stop();
    if (loop_) {
        loop_->stop();
    }
}

bool Node::running() const noexcept {
    return impl_->running();
}
const std::string& Node::id() const noexcept {
    return impl_->id();
}
const std::string& Node::name() const noexcept {
    return impl_->name();
}
const std::string& Node::domain_id() const noexcept {
    return impl_->domain();
}
const std::string& Node::host() const noexcept {
    return impl_->host();
}
asio::any_io_executor Node::get_executor() const noexcept {
    return impl_->executor();
}
std::string Node::discovery_backend() const {
    return impl_->backend_name();
}
CodecId Node::default_codec() const noexcept {
    return impl_->codec();
}

bool Node::begin_message(std::string_view topic, CodecId codec, Buffer& frame) {
    return impl_->begin_message(topic, codec, frame);
}
namespace {
// The connections a coroutine's send() found full on this thread, for room_after_send().
thread_local std::vector<std::shared_ptr<detail::Connection>> full_after_send;

asio::awaitable<void> wait_for_room(std::vector<std::shared_ptr<detail::Connection>> full,
                                    std::chrono::steady_clock::time_point deadline) {
    for (const auto& conn : full) {
        // Suspends this coroutine only; room, a closed link or the deadline resumes it.
        co_await conn->async_wait_for_room(deadline, asio::experimental::as_tuple(asio::use_awaitable));
    }
}
}  // namespace

void Node::finish_message(std::string_view topic,
                          Buffer&& frame,
                          std::span<const std::byte> tail,
                          bool suspend_when_full) {
    if (suspend_when_full && impl_->options().outbox_full == OutboxFull::wait) {
        impl_->finish_message(topic, std::move(frame), tail, &full_after_send);
    } else {
        impl_->finish_message(topic, std::move(frame), tail);
    }
}
asio::awaitable<void> Node::room_after_send() {
    if (full_after_send.empty()) {
        return detail::ready();
    }
    return wait_for_room(std::exchange(full_after_send, {}),
                         std::chrono::steady_clock::now() + impl_->options().outbox_ttl);
}
void Node::finish_loaned(Buffer&& frame, const detail::LoanState& loan, bool suspend_when_full) {
    std::uint64_t sent_at = 0;  // the frame's own stamp, for the loaned frames too
    for (std::size_t i = 0; i < 8; ++i) {
        sent_at |= std::uint64_t{std::to_integer<std::uint8_t>(frame.data()[detail::wire::frame_prefix + 4 + i])}
                   << (8 * i);
    }
    const detail::LoanedSend as_loan = [&](detail::Connection& conn) {
        return conn.send_loaned(loan.block, loan.codec, sent_at, loan.topic);
    };
    auto* full = suspend_when_full && impl_->options().outbox_full == OutboxFull::wait ? &full_after_send : nullptr;
    impl_->finish_message(loan.topic, std::move(frame), loan.payload(), full, &as_loan);
}
void Node::advertise(std::string topic, AdvertiseOptions options) {
    impl_->advertise(std::move(topic), options);
}
void Node::send_raw(std::string_view topic,
                    CodecId codec,
                    std::span<const std::byte> payload,
                    std::uint64_t sent_at_ns) {
    impl_->send_raw(topic, codec, payload, sent_at_ns);
}

void Node::listen_erased(std::string topic, detail::ListenerFn fn) {
    impl_->listen(std::move(topic), std::move(fn));
}
void Node::listen_raw(std::string topic, std::function<void(const RawMessage&)> callback) {
    detail::ListenerFn fn;
    fn.plain = std::move(callback);
    impl_->listen(std::move(topic), std::move(fn));
}
bool Node::stop_listening(std::string_view topic) {
    return impl_->stop_listening(topic);
}
std::vector<std::string> Node::listened_topics() const {
    return impl_->listened_topics();
}
bool Node::topic_has_listeners(std::string_view topic) const {
    return impl_->topic_has_listeners(topic);
}

asio::awaitable<void> Node::wait_for_listener(std::string topic, std::chrono::milliseconds timeout) {
    auto impl = impl_;
    // Waiting for a listener says this node will send to it: the topic is advertised and the
    // listeners' links dialed, and the wait ends once one can take a message.
    impl->announce_sender(topic);
    return impl->wait_until([impl, topic] { return impl->listener_reachable(topic); }, timeout,
                            "no listener for topic '" + topic + "'");
}
void Node::wait_for_listener_blocking(std::string topic, std::chrono::milliseconds timeout) {
    run_blocking(*impl_, "wait_for_listener_blocking", wait_for_listener(std::move(topic), timeout));
}
void Node::depends_on_listener_erased(std::string downstream, std::string upstream, detail::ListenerFn fn) {
    impl_->depends_on_listener(std::move(downstream), std::move(upstream), std::move(fn));
}

asio::awaitable<RawPayload> Node::call_raw(std::string service, CodecId codec, Buffer request, CallOptions options) {
    return impl_->call(std::move(service), codec, std::move(request), options);
}
RawPayload Node::call_raw_blocking(std::string_view service, CodecId codec, Buffer request, CallOptions options) {
    refuse_on_own_thread(*impl_, "call_blocking");
    return impl_->call_blocking(std::string(service), codec, std::move(request), options);
}
void Node::add_service_erased(std::string service, detail::ServiceFn fn) {
    impl_->add_service(std::move(service), std::move(fn));
}
void Node::add_service_raw(std::string service, std::function<RawPayload(const RawMessage&)> handler) {
    detail::ServiceFn fn;
    fn.plain = std::move(handler);
    impl_->add_service(std::move(service), std::move(fn));
}
void Node::add_service_raw(std::string service, std::function<asio::awaitable<RawPayload>(const RawMessage&)> handler) {
    detail::ServiceFn fn;
    fn.coroutine = std::move(handler);
    impl_->add_service(std::move(service), std::move(fn));
}
bool Node::remove_service(std::string_view service) {
    return impl_->remove_service(service);
}
std::vector<std::string> Node::provided_services() const {
    return impl_->provided_services();
}
bool Node::service_has_providers(std::string_view service) const {
    return impl_->service_has_providers(service);
}
asio::awaitable<void> Node::wait_for_service_provider(std::string service, std::chrono::milliseconds timeout) {
    auto impl = impl_;
    return impl->wait_until([impl, service] { return impl->service_has_providers(service); }, timeout,
                            "no provider for service '" + service + "'");
}
void Node::wait_for_service_provider_blocking(std::string service, std::chrono::milliseconds timeout) {
    run_blocking(*impl_, "wait_for_service_provider_blocking", wait_for_service_provider(std::move(service), timeout));
}

std::vector<NodeInfo> Node::nodes() const {
    return impl_->nodes();
}

}  // namespace meshy

/// @file
/// `meshy::Node`: one participant of the mesh. It advertises the topics it listens to and the
/// services it provides, keeps the mesh topology, and sends straight to its peers.
///
/// @code
/// asio::awaitable<void> run(meshy::Node& node) {
///     co_await node.listen("chatter", [](const std::string& text) { std::cout << text << "\n"; });
///     co_await node.send("chatter", std::string{"hello"});
///     co_await node.add_service("multiply", [](int a, int b) { return a * b; });
///     int product = co_await node.call<int>("multiply", 2, 2);
/// }
/// @endcode
///
/// ## Threads
/// A node runs on an executor: the user's (`Node(io.get_executor(), options)`, run the io_context
/// yourself) or a thread of its own (`Node(options)`). Every member function is thread-safe.
/// The coroutine functions may be awaited from any executor. The `_blocking` functions may be
/// called from any thread except the node's own event-loop thread(s), where the ones that wait
/// (`call_blocking`, `wait_for_*_blocking`) throw `Error(errc::would_deadlock)` instead of
/// deadlocking; `send_blocking`, `listen_blocking` and `add_service_blocking` never wait and are
/// safe everywhere. Callbacks run on the node's executor. The callbacks of one topic run one at a
/// time, in arrival order; different topics (and service requests) run independently, so a slow
/// callback never stalls the reading of other topics or peers. On an io_context run by several
/// threads, callbacks of different topics may run concurrently.
///
/// ## Delivery
/// Topics are fire-and-forget: messages from one sender arrive in the order sent; none is
/// guaranteed to arrive. Each peer has a bounded outbox (`NodeOptions::outbox_capacity`,
/// `outbox_ttl`): when it is full the oldest message is dropped, and messages older than the
/// TTL are dropped, each with a rate-limited warning. A dead peer never blocks sending to others.
///
/// ## Codecs
/// This header parses no codec library. The typed operations (`send`, `listen`, `call`,
/// `add_service`) without a codec argument use msgpack (or raw, when that is the node's codec):
/// `#include <meshy/codecs/msgpack.hpp>` beside this header, or `<meshy/meshy.hpp>`; without it they
/// do not compile. A codec argument names others (`send<meshy::CerealCodec>`, with its header). The
/// `_raw` operations need no codec. See meshy/codec.hpp and detail/codec_dispatch.hpp.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshy/buffer.hpp"
#include "meshy/codec.hpp"
#include "meshy/detail/callable_traits.hpp"
#include "meshy/detail/codec_dispatch.hpp"
#include "meshy/error.hpp"
#include "meshy/loan.hpp"
#include "meshy/message.hpp"
#include "meshy/node_options.hpp"

namespace meshy {

class Topic;
class Service;

namespace detail {
class NodeImpl;
struct LoanState;
struct OwnLoop;

/// An awaitable that completes at once, through the awaiting coroutine's executor (for
/// operations done eagerly).
asio::awaitable<void> ready();

/// A type-erased topic callback: exactly one of the two is set.
struct ListenerFn {
    std::function<void(const RawMessage&)> plain;
    std::function<asio::awaitable<void>(const RawMessage&)> coroutine;
};

/// A type-erased service handler: exactly one of the two is set. A plain one runs where the
/// request is read (no coroutine is started per request); a coroutine is spawned per request.
struct ServiceFn {
    std::function<RawPayload(const RawMessage&)> plain;
    std::function<asio::awaitable<RawPayload>(const RawMessage&)> coroutine;
};

template <class F>
concept listener_callable = has_plain_signature<F> &&
    (std::is_void_v<typename callable_traits<std::decay_t<F>>::result> ||
     std::is_same_v<typename callable_traits<std::decay_t<F>>::result, asio::awaitable<void>>);

template <class F>
concept service_callable = has_plain_signature<F>;
}  // namespace detail

/// One node of the mesh. Built running: the constructor binds its servers and starts discovery;
/// `stop()` or the destructor withdraws its advertisement and closes its connections.
class Node {
public:
    /// Builds a node that runs on a thread of its own.
    /// @param options name, domain, transports, codec, balancers (validated here)
    /// @throws Error(errc::invalid_argument) for bad options, Error(errc::io_error) when a server
    ///         cannot bind, Error(errc::discovery_unavailable) when `DiscoveryMode::avahi` is required
    ///         and no avahi-daemon is reachable.
    /// @code
    /// meshy::Node node({.name = "talker"});
    /// node.send_blocking("chatter", std::string{"hello"});
    /// @endcode
    explicit Node(NodeOptions options = {});
    /// Builds a node that runs on `executor`; run its io_context yourself. The io_context must
    /// outlive the node.
    /// @code
    /// asio::io_context io;
    /// meshy::Node node(io.get_executor(), {.name = "listener"});
    /// asio::co_spawn(io, run(node), asio::detached);
    /// io.run();
    /// @endcode
    Node(asio::any_io_executor executor, NodeOptions options = {});
    /// Stops the node (see stop()).
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    /// Withdraws the advertisement (peers see the node leave within about 1 s), closes every
    /// connection, fails pending calls with errc::not_running, and ends callbacks. Idempotent.
    void stop();
    /// False once stop() was called.
    bool running() const noexcept;

    /// The node's UUID (canonical 36-character text).
    const std::string& id() const noexcept;
    /// The node's name.
    const std::string& name() const noexcept;
    /// The domain ID.
    const std::string& domain_id() const noexcept;
    /// The host the node runs on.
    const std::string& host() const noexcept;
    /// The executor the node runs on.
    asio::any_io_executor get_executor() const noexcept;
    /// The discovery backend in use: "avahi" or "local".
    std::string discovery_backend() const;

    // ------------------------------------------------------------------------------------------
    // Topics

    /// Sends a message to the topic's listeners (one node per name group, see load_balancer.hpp).
    /// Returns once queued; sending to a topic nobody listens to does nothing.
    /// @param topic topic name
    /// @param args the message, encoded with the node's codec (or UserCodec: a codec, or Codecs<...>)
    /// @throws Error(errc::codec_mismatch) when the codec cannot encode these types, or when the
    ///         node's codec is not one this call uses (without UserCodec: msgpack and raw)
    /// @code
    /// co_await node.send("some-topic", std::string{"hello world"});
    /// @endcode
    template <class UserCodec = detail::NoCodec, class... Args>
    asio::awaitable<void> send(std::string_view topic, const Args&... args) {
        // Encoded and queued now: nothing refers to the arguments later. With OutboxFull::wait, the
        // coroutine then suspends until the peers it sent to have room; its thread goes on.
        const CodecId codec = codec_for<UserCodec>();
        Buffer frame;
        if (!begin_message(topic, codec, frame)) {
            return detail::ready();
        }
        send_encoded<UserCodec>(topic, codec, std::move(frame), true, detail::wire_value(args)...);
        return room_after_send();
    }

    /// send() for code without coroutines. Never waits; safe from any thread.
    template <class UserCodec = detail::NoCodec, class... Args>
    void send_blocking(std::string_view topic, const Args&... args) {
        const CodecId codec = codec_for<UserCodec>();
        Buffer frame;
        if (!begin_message(topic, codec, frame)) {
            return;
        }
        send_encoded<UserCodec>(topic, codec, std::move(frame), false, detail::wire_value(args)...);
    }

    /// Declares a topic this node sends: its type name and schema, shown to peers (`meshy topic
    /// list -t`, the bridge, bags), and whether it is latched (a listener that joins later gets the
    /// last message first, once). The first send() of a topic advertises it untyped by itself.
    /// @code
    /// node.advertise("map", {.type = "nav/Map", .latched = true});
    /// @endcode
    void advertise(std::string topic, AdvertiseOptions options = {});

    /// Sends an already encoded payload (tools, bag playback). @param sent_at_ns 0: now.
    void send_raw(std::string_view topic,
                  CodecId codec,
                  std::span<const std::byte> payload,
                  std::uint64_t sent_at_ns = 0);

    /// Lends a block of this node's shared-memory pool for one message on `topic` (docs/shm.md,
    /// "Loans"): fill `loan.bytes()`, then send_loaned(). Listeners linked over shared memory read
    /// the message in place; others get a copy. When the pool has no room now (listeners still hold
    /// earlier loans), it waits for a block with OutboxFull::wait (until one is freed, or the node
    /// stops), and throws with OutboxFull::drop_oldest.
    /// @param topic topic name
    /// @param bytes the message's size
    /// @param options the codec (raw, or msgpack for one `bin` argument)
    /// @throws Error(errc::pool_exhausted) when the pool has no room (drop_oldest);
    ///         Error(errc::invalid_argument) for a loan larger than NodeOptions::shm_pool_bytes or
    ///         another codec; Error(errc::not_running) when the node stops; Error(errc::io_error)
    ///         when the pool cannot be made.
    /// @code
    /// auto loan = co_await node.loan("camera", 8 << 20);
    /// fill(loan.bytes());
    /// co_await node.send_loaned(std::move(loan));
    /// @endcode
    asio::awaitable<Loan> loan(std::string topic, std::size_t bytes, LoanOptions options = {});
    /// loan() for code without coroutines: blocks the calling thread while it waits for room.
    /// @throws as loan(), and Error(errc::would_deadlock) when it would wait on the node's own thread
    Loan loan_blocking(std::string topic, std::size_t bytes, LoanOptions options = {});
    /// Sends the message built in `loan`, like send() (same routing, same outbox policy; a full
    /// outbox waits with OutboxFull::wait). `loan` is spent afterwards.
    /// @throws Error(errc::loan_spent) when `loan` was sent already (or moved from)
    asio::awaitable<void> send_loaned(Loan&& loan);
    /// send_loaned() for code without coroutines (like send_blocking: a full outbox blocks the
    /// calling thread with OutboxFull::wait, never the node's own).
    void send_loaned_blocking(Loan&& loan);

    /// Listens to a topic. The callback's parameters are the message's arguments, decoded by the
    /// codec the message carries; it returns void, or asio::awaitable<void> to run as a coroutine.
    /// Listening again to the same topic replaces the callback. A message that does not decode
    /// into the callback's types is dropped with a warning.
    /// @code
    /// co_await node.listen("some-topic", [](const std::string& text) { std::cout << text << "\n"; });
    /// @endcode
    template <class UserCodec = detail::NoCodec, class F>
    asio::awaitable<void> listen(std::string topic, F callback) {
        listen_blocking<UserCodec>(std::move(topic), std::move(callback));
        return detail::ready();
    }

    /// listen() for code without coroutines. Never waits; safe from any thread.
    template <class UserCodec = detail::NoCodec, class F>
    void listen_blocking(std::string topic, F callback) {
        static_assert(detail::listener_callable<F>,
                      "meshy::Node::listen: the callback must be a callable with a fixed signature (no auto "
                      "parameters) returning void or asio::awaitable<void>");
        listen_erased(std::move(topic), make_listener<UserCodec>(std::move(callback)));
    }

    /// Listens with access to the undecoded message (tools, recorders).
    void listen_raw(std::string topic, std::function<void(const RawMessage&)> callback);

    /// Stops listening to a topic; peers stop sending to it. @returns false if not listening.
    bool stop_listening(std::string_view topic);
    /// The topics this node listens to, sorted.
    std::vector<std::string> listened_topics() const;

    /// True when some node (this one included) listens to `topic`.
    bool topic_has_listeners(std::string_view topic) const;
    /// Waits until some node listens to `topic`. @throws Error(errc::timeout) when `timeout` (if
    /// non-zero) passes first.
    asio::awaitable<void> wait_for_listener(std::string topic,
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
    /// wait_for_listener() for code without coroutines. @throws Error(errc::would_deadlock) on the
    /// node's own thread.
    void wait_for_listener_blocking(std::string topic,
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds{0});

    /// rosy's depends_on_listener: listen to `upstream` only while `downstream` has listeners.
    /// While nobody consumes what this node would produce, it stops consuming its input.
    template <class UserCodec = detail::NoCodec, class F>
    asio::awaitable<void> depends_on_listener(std::string downstream, std::string upstream, F callback) {
        static_assert(detail::listener_callable<F>, "meshy::Node::depends_on_listener: see listen()");
        depends_on_listener_erased(std::move(downstream), std::move(upstream),
                                   make_listener<UserCodec>(std::move(callback)));
        return detail::ready();
    }

    /// A handle on one topic, like rosy's get_topic().
    Topic get_topic(std::string topic);

    // ------------------------------------------------------------------------------------------
    // Services

    /// Calls a service on one provider (rotating among providers) and returns its reply.
    /// @tparam R the reply type (void for none)
    /// @throws Error(errc::no_provider) when nobody provides it; Error(errc::timeout) when the
    ///         reply does not come in time; Error(errc::connection_lost) when the provider's
    ///         connection closes first; Error(errc::remote_error) with the remote message when the
    ///         handler threw; Error(errc::codec_mismatch / decode_error) for a reply of other types.
    /// @code
    /// int product = co_await node.call<int>("multiply", 2, 2);
    /// int late = co_await node.call<int>(meshy::CallOptions{.timeout = 500ms}, "multiply", 2, 2);
    /// @endcode
    template <class R, class UserCodec = detail::NoCodec, class... Args>
    asio::awaitable<R> call(std::string_view service, const Args&... args) {
        return call_decoded<R, UserCodec>(std::string(service), encode_request<UserCodec>(args...), CallOptions{});
    }
    /// call() with per-call options.
    template <class R, class UserCodec = detail::NoCodec, class... Args>
    asio::awaitable<R> call(CallOptions options, std::string_view service, const Args&... args) {
        return call_decoded<R, UserCodec>(std::string(service), encode_request<UserCodec>(args...), options);
    }
    /// call() for code without coroutines. @throws Error(errc::would_deadlock) on the node's own thread.
    template <class R, class UserCodec = detail::NoCodec, class... Args>
    R call_blocking(std::string_view service, const Args&... args) {
        return decode_reply<R, UserCodec>(
            call_raw_blocking(service, codec_for<UserCodec>(), encode_request<UserCodec>(args...), CallOptions{}));
    }
    /// call_blocking() with per-call options.
    template <class R, class UserCodec = detail::NoCodec, class... Args>
    R call_blocking(CallOptions options, std::string_view service, const Args&... args) {
        return decode_reply<R, UserCodec>(
            call_raw_blocking(service, codec_for<UserCodec>(), encode_request<UserCodec>(args...), options));
    }

    /// Calls with an already encoded request; the reply comes back undecoded.
    asio::awaitable<RawPayload> call_raw(std::string service, CodecId codec, Buffer request, CallOptions options);
    /// call_raw() for code without coroutines.
    RawPayload call_raw_blocking(std::string_view service, CodecId codec, Buffer request, CallOptions options);

    /// Provides a service. The handler's parameters are the request's arguments; it returns the
    /// reply (or void), or asio::awaitable of it. An exception it throws reaches the caller as
    /// Error(errc::remote_error) carrying what(). Adding it again replaces the handler.
    /// @code
    /// co_await node.add_service("multiply", [](int a, int b) { return a * b; });
    /// @endcode
    template <class UserCodec = detail::NoCodec, class F>
    asio::awaitable<void> add_service(std::string service, F handler) {
        add_service_blocking<UserCodec>(std::move(service), std::move(handler));
        return detail::ready();
    }
    /// add_service() for code without coroutines. Never waits; safe from any thread.
    template <class UserCodec = detail::NoCodec, class F>
    void add_service_blocking(std::string service, F handler) {
        static_assert(detail::service_callable<F>,
                      "meshy::Node::add_service: the handler must be a callable with a fixed signature (no auto "
                      "parameters)");
        add_service_erased(std::move(service), make_service<UserCodec>(std::move(handler)));
    }
    /// Provides a service from undecoded requests (tools, bridges). A plain handler runs on the
    /// node's executor where the request was read, like a plain listener: it should not block.
    void add_service_raw(std::string service, std::function<RawPayload(const RawMessage&)> handler);
    /// add_service_raw() with a coroutine handler, spawned per request (it may take its time).
    void add_service_raw(std::string service, std::function<asio::awaitable<RawPayload>(const RawMessage&)> handler);
    /// Stops providing a service. @returns false if not provided.
    bool remove_service(std::string_view service);
    /// The services this node provides, sorted.
    std::vector<std::string> provided_services() const;

    /// True when some node (this one included) provides `service`.
    bool service_has_providers(std::string_view service) const;
    /// Waits until some node provides `service`. @throws Error(errc::timeout) when `timeout`
    /// (if non-zero) passes first.
    asio::awaitable<void> wait_for_service_provider(std::string service,
                                                    std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
    /// wait_for_service_provider() for code without coroutines.
    void wait_for_service_provider_blocking(std::string service,
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
    /// A handle on one service.
    Service get_service(std::string service);

    // ------------------------------------------------------------------------------------------
    // Topology

    /// Every node this node knows, itself included, sorted by name then id.
    std::vector<NodeInfo> nodes() const;

private:
    /// @throws Error(errc::codec_mismatch) when UserCodec does not include the node's codec.
    template <class UserCodec>
    CodecId codec_for() const {
        return detail::encoding_codec<UserCodec>(default_codec());
    }

    template <class UserCodec, class... Values>
    void send_encoded(
        std::string_view topic, CodecId codec, Buffer&& frame, bool suspend_when_full, const Values&... values) {
        // A last argument of bytes is not copied into the frame (see detail::large_payload_min).
        if (const auto tail = detail::encode_head<UserCodec>(codec, frame, values...); !tail.empty()) {
            finish_message(topic, std::move(frame), tail, suspend_when_full);
            return;
        }
        detail::encode_args<UserCodec>(codec, frame, values...);
        finish_message(topic, std::move(frame), {}, suspend_when_full);
    }

    template <class UserCodec, class... Args>
    Buffer encode_request(const Args&... args) const {
        Buffer out;
        detail::encode_args<UserCodec>(codec_for<UserCodec>(), out, detail::wire_value(args)...);
        return out;
    }

    template <class R, class UserCodec>
    asio::awaitable<R> call_decoded(std::string service, Buffer request, CallOptions options) {
        RawPayload reply = co_await call_raw(std::move(service), codec_for<UserCodec>(), std::move(request), options);
        co_return decode_reply<R, UserCodec>(reply);
    }

    template <class R, class UserCodec>
    static R decode_reply(const RawPayload& reply) {
        if constexpr (std::is_void_v<R>) {
            return;
        } else {
            return std::get<0>(detail::decode_args<UserCodec, R>(reply.codec, reply.bytes.bytes()));
        }
    }

    template <class UserCodec, class F>
    static detail::ListenerFn make_listener(F callback) {
        using traits = detail::callable_traits<std::decay_t<F>>;
        detail::ListenerFn fn;
        if constexpr (std::is_void_v<typename traits::result>) {
            fn.plain = [cb = std::move(callback)](const RawMessage& m) mutable {
                std::apply(cb, decode_as<UserCodec>(m, static_cast<typename traits::args*>(nullptr)));
            };
        } else {
            // The node keeps this ListenerFn alive until the coroutine it returned has finished.
            fn.coroutine = [cb = std::move(callback)](const RawMessage& m) mutable -> asio::awaitable<void> {
                co_await std::apply(cb, decode_as<UserCodec>(m, static_cast<typename traits::args*>(nullptr)));
            };
        }
        return fn;
    }

    template <class UserCodec, class F>
    detail::ServiceFn make_service(F handler) const {
        using traits = detail::callable_traits<std::decay_t<F>>;
        using result = typename traits::result;
        using value = typename detail::awaitable_value<result>::type;
        const CodecId reply_codec = codec_for<UserCodec>();
        detail::ServiceFn fn;
        if constexpr (detail::awaitable_value<result>::is_awaitable) {
            // The node keeps this ServiceFn alive until the coroutine it returned has finished.
            fn.coroutine = [h = std::move(handler),
                            reply_codec](const RawMessage& m) mutable -> asio::awaitable<RawPayload> {
                auto args = decode_as<UserCodec>(m, static_cast<typename traits::args*>(nullptr));
                if constexpr (std::is_void_v<value>) {
                    co_await std::apply(h, std::move(args));
                    co_return reply_of<UserCodec>(reply_codec);
                } else {
                    value v = co_await std::apply(h, std::move(args));
                    co_return reply_of<UserCodec>(reply_codec, v);
                }
            };
        } else {
            fn.plain = [h = std::move(handler), reply_codec](const RawMessage& m) mutable {
                auto args = decode_as<UserCodec>(m, static_cast<typename traits::args*>(nullptr));
                if constexpr (std::is_void_v<value>) {
                    std::apply(h, std::move(args));
                    return reply_of<UserCodec>(reply_codec);
                } else {
                    return reply_of<UserCodec>(reply_codec, std::apply(h, std::move(args)));
                }
            };
        }
        return fn;
    }

    /// A service's reply: `values` (none for a void handler) encoded with `codec`.
    template <class UserCodec, class... Values>
    static RawPayload reply_of(CodecId codec, const Values&... values) {
        RawPayload reply;
        reply.codec = codec;
        detail::encode_args<UserCodec>(codec, reply.bytes, values...);
        return reply;
    }

    template <class UserCodec, class... Args>
    static std::tuple<Args...> decode_as(const RawMessage& m, std::tuple<Args...>*) {
        return detail::decode_args<UserCodec, Args...>(m.codec, m.payload);
    }

    CodecId default_codec() const noexcept;
    bool begin_message(std::string_view topic, CodecId codec, Buffer& frame);
    /// Sends the frame begun by begin_message(); `tail`, when given, is the end of its payload,
    /// which is only read during the call. With OutboxFull::wait, a full outbox blocks the calling
    /// thread, unless `suspend_when_full`: then room_after_send() waits for it.
    void finish_message(std::string_view topic,
                        Buffer&& frame,
                        std::span<const std::byte> tail = {},
                        bool suspend_when_full = false);
    /// After finish_message(..., true) on this thread: waits (suspends) until the peers whose
    /// outbox was full have room, or the outbox TTL passes; completes at once when none was full.
    asio::awaitable<void> room_after_send();
    /// finish_message() for a loan's message: listeners that mapped the pool get it as a loan.
    void finish_loaned(Buffer&& frame, const detail::LoanState& loan, bool suspend_when_full);
    void listen_erased(std::string topic, detail::ListenerFn fn);
    void depends_on_listener_erased(std::string downstream, std::string upstream, detail::ListenerFn fn);
    void add_service_erased(std::string service, detail::ServiceFn fn);

    std::unique_ptr<detail::OwnLoop> loop_;  // the node's own thread, when it has one; outlives impl_
    std::shared_ptr<detail::NodeImpl> impl_;
};

/// A handle on one topic of a node (rosy's get_topic()). Cheap to copy; valid while the node lives.
class Topic {
public:
    Topic(Node& node, std::string name) : node_(&node), name_(std::move(name)) {}
    /// The topic name.
    const std::string& name() const noexcept { return name_; }
    /// Node::send() on this topic.
    template <class UserCodec = detail::NoCodec, class... Args>
    asio::awaitable<void> send(const Args&... args) {
        return node_->send<UserCodec>(name_, args...);
    }
    /// Node::send_blocking() on this topic.
    template <class UserCodec = detail::NoCodec, class... Args>
    void send_blocking(const Args&... args) {
        node_->send_blocking<UserCodec>(name_, args...);
    }
    /// Node::listen() on this topic.
    template <class UserCodec = detail::NoCodec, class F>
    asio::awaitable<void> listen(F callback) {
        return node_->listen<UserCodec>(name_, std::move(callback));
    }
    /// Node::stop_listening() on this topic.
    bool stop_listening() { return node_->stop_listening(name_); }
    /// Node::topic_has_listeners() on this topic.
    bool has_listeners() const { return node_->topic_has_listeners(name_); }
    /// Node::wait_for_listener() on this topic.
    asio::awaitable<void> wait_for_listener(std::chrono::milliseconds timeout = std::chrono::milliseconds{0}) {
        return node_->wait_for_listener(name_, timeout);
    }

private:
    Node* node_;
    std::string name_;
};

/// A handle on one service of the mesh, seen from a node. Cheap to copy; valid while the node lives.
class Service {
public:
    Service(Node& node, std::string name) : node_(&node), name_(std::move(name)) {}
    /// The service name.
    const std::string& name() const noexcept { return name_; }
    /// Node::call() on this service.
    template <class R, class UserCodec = detail::NoCodec, class... Args>
    asio::awaitable<R> call(const Args&... args) {
        return node_->call<R, UserCodec>(name_, args...);
    }
    /// Node::call_blocking() on this service.
    template <class R, class UserCodec = detail::NoCodec, class... Args>
    R call_blocking(const Args&... args) {
        return node_->call_blocking<R, UserCodec>(name_, args...);
    }
    /// Node::service_has_providers() on this service.
    bool has_providers() const { return node_->service_has_providers(name_); }
    /// Node::wait_for_service_provider() on this service.
    asio::awaitable<void> wait_for_provider(std::chrono::milliseconds timeout = std::chrono::milliseconds{0}) {
        return node_->wait_for_service_provider(name_, timeout);
    }

private:
    Node* node_;
    std::string name_;
};

inline Topic Node::get_topic(std::string topic) {
    return Topic(*this, std::move(topic));
}
inline Service Node::get_service(std::string service) {
    return Service(*this, std::move(service));
}

}  // namespace meshy

// Internal: the state and machinery behind meshy::Node.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/recycling_allocator.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/drop_counter.hpp"
#include "discovery/discovery.hpp"
#include "meshy/node.hpp"
#include "transport/acceptor.hpp"
#include "transport/connection.hpp"
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
};

/// One listened topic: a bounded inbox and the worker coroutine that feeds the callback.
struct Subscription {
    /// @param one_thread only one thread runs `ex`, so the worker needs no strand of its own
    Subscription(
        asio::any_io_executor ex, std::string t, std::shared_ptr<ListenerFn> f, std::size_t cap, bool one_thread)
        : topic(std::move(t)),
          fn(std::move(f)),
          capacity(cap),
          strand(one_thread ? ex : asio::make_strand(ex)),
          bell(strand, 1) {}
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
    std::uint64_t stop_locked() {
        stopped = true;
        clear_inbox();
        bell.close();
        return drops.take();
    }
};

/// How a call ended: `reply`, or an error code with its text in `reply.bytes` (or none).
struct CallOutcome {
    std::error_code ec;
    RawPayload reply;
};

/// The suspended caller of one call. Completed once: by the reply, the timeout, a lost provider
/// or stop().
class CallWaiter {
public:
    virtual ~CallWaiter() = default;
    // A waiter lives for one call: Asio's per-thread recycling allocator keeps its memory for the
    // next one (malloc and free took about 150 instructions a call).
    static void* operator new(std::size_t size) { return asio::recycling_allocator<std::byte>().allocate(size); }
    static void operator delete(void* p, std::size_t size) {
        asio::recycling_allocator<std::byte>().deallocate(static_cast<std::byte*>(p), size);
    }
    /// Resumes the caller on its executor: at once when `may_run_here` and this thread runs that
    /// executor (never with a lock held), else posted.
    virtual void complete(CallOutcome outcome, bool may_run_here) = 0;
};

struct Peer;

struct PendingCall {
    std::unique_ptr<CallWaiter> waiter;
    std::shared_ptr<const Peer> peer;  // the provider asked (only it may answer)
    const Connection* conn = nullptr;  // the connection carrying the request, when known
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    Buffer storage;  // the request's, once sent: the reply is copied into it (no allocation)
};

/// A queued frame for a peer with no connection yet.
struct Parked {
    SharedFrame frame;
    std::chrono::steady_clock::time_point at;
};

/// Another node, as this node knows it.
struct Peer {
    std::string id;
    std::string name;
    std::string host;
    std::optional<Advert> advert;          // from discovery; absent once it withdrew
    std::optional<wire::Info> info;        // its topics and services, from Info frames
    std::shared_ptr<Connection> outbound;  // dialed by us (connecting or open)
    std::vector<std::shared_ptr<Connection>> inbound;
    std::shared_ptr<Connection> send_conn;  // sticky: keeps per-sender order
    std::deque<Parked> parked;              // frames waiting for a connection
    DropCounter parked_drops;               // frames dropped from parked
    bool dialing = false;
    int redial_ms = 0;
    std::chrono::steady_clock::time_point lost_since{};
    std::uint64_t generation = 0;  // bumps on every loss, so stale grace timers do nothing

    bool connected() const { return send_conn && send_conn->open(); }
};

class NodeImpl final : public ConnectionHandler, public std::enable_shared_from_this<NodeImpl> {
public:
    /// @param own_loop the executor belongs to the node's own thread (Node owns it)
    NodeImpl(asio::any_io_executor executor, NodeOptions options, bool own_loop);
    ~NodeImpl() override;

    void start();
    void stop();
    bool running() const noexcept { return running_.load(std::memory_order_acquire); }

    const std::string& id() const noexcept { return id_; }
    const std::string& name() const noexcept { return name_; }
    const std::string& domain() const noexcept { return domain_; }
    const std::string& host() const noexcept { return host_; }
    asio::any_io_executor executor() const noexcept { return exec_; }
    CodecId codec() const noexcept { return options_.codec; }
    std::string backend_name() const;
    /// True on a thread running the node's io_context (its own thread, or one of the user's).
    bool on_own_thread() const;

    // topics
    bool begin_message(std::string_view topic, CodecId codec, Buffer& frame);
    void finish_message(std::string_view topic, Buffer&& frame, std::span<const std::byte> tail = {});
    void send_raw(std::string_view topic, CodecId codec, std::span<const std::byte> payload, std::uint64_t sent_at_ns);
    void listen(std::string topic, ListenerFn fn);
    bool stop_listening(std::string_view topic);
    std::vector<std::string> listened_topics() const;
    bool topic_has_listeners(std::string_view topic) const;
    void depends_on_listener(std::string downstream, std::string upstream, ListenerFn fn);

    // services
    void add_service(std::string service, ServiceFn fn);
    bool remove_service(std::string_view service);
    std::vector<std::string> provided_services() const;
    bool service_has_providers(std::string_view service) const;
    asio::awaitable<RawPayload> call(std::string&& service, CodecId codec, Buffer&& request, CallOptions options);
    /// call() for a thread that may block (never the node's own): it sends the request itself and
    /// waits for the reply, with no hand-over to the node's thread.
    RawPayload call_blocking(std::string service, CodecId codec, Buffer request, CallOptions options);
    /// The reply of a finished call. @throws Error for a failed one.
    static RawPayload take_reply(CallOutcome&& outcome, const std::string& service, std::chrono::milliseconds timeout);

    /// Waits until `ready()` holds, polling on topology changes. @throws Error(errc::timeout).
    asio::awaitable<void> wait_until(std::function<bool()> ready, std::chrono::milliseconds timeout, std::string what);

    std::vector<NodeInfo> nodes() const;

    // ConnectionHandler
    bool on_handshake(const std::shared_ptr<Connection>& conn, const wire::Handshake& hs, std::string& reason) override;
    void on_frame(const std::shared_ptr<Connection>& conn, const wire::FrameView& frame) override;
    void on_frames_done(const std::shared_ptr<Connection>& conn) override;
    void on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason) override;

private:
    using Lock = std::unique_lock<std::mutex>;

    void open_servers();
    std::shared_ptr<Connection> adopt(Connection::Socket socket, bool outbound, bool is_unix, std::string expected_id);
    ConnectionConfig connection_config(std::string expected_id) const;
    std::shared_ptr<Acceptor> make_acceptor(std::string label, bool is_unix);

    void on_peer_up(const Advert& advert);
    void on_peer_down(const std::string& id);
    void dial_locked(Peer& peer);
    asio::awaitable<void> dial(std::string id, Advert advert);
    void schedule_redial_locked(Peer& peer);
    void schedule_grace_check_locked(Peer& peer);
    void drop_peer_state_locked(Peer& peer, const std::string& why);

    /// @returns true when the peer's outbox is full now (see OutboxFull::wait).
    bool deliver_locked(Peer& peer, const SharedFrame& frame, const Connection** used = nullptr, bool urgent = false);
    void deliver_local(const std::shared_ptr<Subscription>& sub, InboxItem item);
    /// deliver_local() of several items, under one lock; `items` is left empty.
    void deliver_local(const std::shared_ptr<Subscription>& sub, std::vector<InboxItem>& items);
    /// With sub->mutex held: queues `item` (dropping the oldest when full; `compact`: copying it out
    /// of its receive buffer when the listener is behind). @returns drops to report.
    std::uint64_t enqueue_locked(Subscription& sub, InboxItem&& item, bool compact);
    static void warn_inbox_drops(const Subscription& sub, std::uint64_t count);
    /// Logs what a listener of `sub` threw (call it in a catch block).
    static void log_listener_failure(const Subscription& sub);
    void start_worker(const std::shared_ptr<Subscription>& sub);
    asio::awaitable<void> worker(std::shared_ptr<Subscription> sub);

    void handle_message(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body);
    void handle_request(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body);
    /// The last service looked up, by callers or by requests (one each, so a node that calls one
    /// service and serves another does not alternate); valid while generation_ is (topology) and
    /// until services_changed_locked(). Under mutex_.
    struct ServiceLookup {
        bool valid = false;
        std::uint64_t generation = 0;
        std::string service;
        std::shared_ptr<ServiceFn> local;                            // this node's handler, if any
        const std::vector<std::shared_ptr<Peer>>* remote = nullptr;  // its entry in service_index_
    };
    /// `service` in services_ and service_index_, through `cache`: a string compare while the
    /// topology and the services are unchanged. Under mutex_.
    const ServiceLookup& lookup_service_locked(ServiceLookup& cache, std::string_view service);
    /// Drops the cached lookups (and the handlers they hold): services_ changed. Under mutex_.
    void services_changed_locked();
    void handle_reply(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body);
    static void send_reply(Connection& conn, std::uint64_t call_id, const RawPayload& result);
    static void send_failure(Connection& conn, std::uint64_t call_id, const std::string& what);
    void handle_info(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body);

    void info_changed_locked();
    SharedFrame info_frame_locked() const;
    void topology_changed_locked();
    void evaluate_dependencies();
    void fail_calls_locked(const std::function<bool(const PendingCall&)>& which, errc code, const std::string& why);
    /// Picks a provider of `service` (this node or a peer), registers the call and sends its
    /// request, or runs this node's own handler; the outcome reaches `waiter`. `service` may be the
    /// waiter's own: it is not used once the waiter is handed on.
    void start_call(std::unique_ptr<CallWaiter> waiter,
                    const std::string& service,
                    CodecId codec,
                    Buffer& request,
                    std::chrono::milliseconds timeout);
    std::chrono::milliseconds call_timeout(const CallOptions& options) const {
        return options.timeout.count() > 0 ? options.timeout : options_.call_timeout;
    }
    /// Makes call_timer_ fire by `deadline` (with mutex_ held).
    void arm_call_timer_locked(std::chrono::steady_clock::time_point deadline);
    /// Fails the calls whose deadline passed and arms the timer for the next one.
    void expire_calls();

    NodeOptions options_;
    std::string id_, name_, domain_, host_;
    std::shared_ptr<const std::string> id_shared_;

    bool own_loop_ = false;
    asio::any_io_executor exec_;
    asio::strand<asio::any_io_executor> strand_;

    std::shared_ptr<Acceptor> tcp_acceptor_;
    std::shared_ptr<Acceptor> unix_acceptor_;
    std::shared_ptr<ReceiveBudget> receive_budget_;  // shared by the node's connections
    std::string unix_path_;
    std::uint16_t tcp_port_ = 0;
    std::unique_ptr<Discovery> discovery_;

    /// Bumped (under mutex_) whenever subs_ or the topic index change; per-thread caches check it.
    void bump_generation() { generation_.store(next_generation_value(), std::memory_order_release); }
    static std::uint64_t next_generation_value();
    std::atomic<std::uint64_t> generation_{0};

    mutable std::mutex mutex_;  // guards everything below
    std::atomic<bool> running_{false};
    std::unordered_map<std::string, std::shared_ptr<Peer>> peers_;
    std::map<std::string, std::shared_ptr<Subscription>, std::less<>> subs_;
    std::map<std::string, std::shared_ptr<ServiceFn>, std::less<>> services_;
    // topic / service -> peers that listen / provide, sorted by id; rebuilt on info changes
    std::map<std::string, std::vector<std::shared_ptr<Peer>>, std::less<>> topic_index_;
    std::map<std::string, std::vector<std::shared_ptr<Peer>>, std::less<>> service_index_;
    std::unordered_map<std::uint64_t, PendingCall> pending_;
    decltype(pending_)::node_type spare_call_;  // an answered call's node, for the next call (no allocation)
    // One timer for all pending calls, due at the earliest deadline (none: max).
    asio::steady_timer call_timer_;
    std::chrono::steady_clock::time_point call_timer_at_ = std::chrono::steady_clock::time_point::max();
    std::vector<const std::shared_ptr<Peer>*> call_targets_scratch_;
    ServiceLookup call_lookup_, request_lookup_;  // callers' and requests' (see ServiceLookup)
    std::uint64_t next_call_id_ = 1;
    std::uint32_t info_revision_ = 0;
    struct Dependency {
        std::string downstream, upstream;
        std::shared_ptr<ListenerFn> fn;
        bool active = false;
    };
    std::vector<Dependency> dependencies_;
    std::vector<PeerRef> refs_scratch_;
    std::vector<Peer*> targets_scratch_;
    std::vector<std::size_t> chosen_scratch_;
    std::shared_ptr<TopicLoadBalancer> topic_balancer_;
    std::shared_ptr<ServiceLoadBalancer> service_balancer_;
};

}  // namespace meshy::detail

#include "node/publisher.hpp"

#include <algorithm>

#include "common/generation.hpp"
#include "common/system.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

// Size of the last message frame this thread built (see begin_message), capped.
constexpr std::size_t max_size_hint = 8u * 1024 * 1024;
std::size_t& last_frame_size_hint() {
    thread_local std::size_t hint = 64;
    return hint;
}
// Message frames up to this size are copied into each connection's outbox (Outbox::copy_message)
// instead of being shared: no frame object per message, and the buffer serves the thread's next one.
constexpr std::size_t small_frame_max = small_message_max;
// The buffer of this thread's last small frame, for its next message (see begin_message).
Buffer& spare_frame() {
    thread_local Buffer spare;
    return spare;
}
// What this thread last sent to, valid while the publisher's generation is unchanged (checked
// under its lock before the pointers, which point into its routing, are used). Generations are
// unique across publishers, so one at the address of a destroyed one never matches. Trivially
// destructible, so that reaching it costs no per-access initialisation check.
struct SendCache {
    const void* owner = nullptr;
    std::uint64_t generation = 0;
    std::string_view topic;  // a key of the publisher's publications_, which are never erased
    bool listened = false;
    bool latched = false;
    const std::shared_ptr<Subscription>* own = nullptr;
    const std::vector<RouteTarget>* listeners = nullptr;
};
constinit thread_local SendCache send_cache;

/// `frame` followed by `tail`, as one frame to share.
SharedFrame joined(const Buffer& frame, std::span<const std::byte> tail) {
    auto out = std::make_shared<Buffer>();
    out->reserve(frame.size() + tail.size());
    out->append(frame.data(), frame.size());
    out->append(tail.data(), tail.size());
    return out;
}

}  // namespace

Publisher::Publisher(const NodeOptions& options,
                     std::string self_id,
                     std::string self_name,
                     std::string self_host,
                     PeerLinks& links,
                     Subscriptions& subscriptions,
                     std::function<void()> publications_changed,
                     std::function<bool()> on_own_thread)
    : options_(options),
      id_(std::move(self_id)),
      name_(std::move(self_name)),
      host_(std::move(self_host)),
      id_shared_(std::make_shared<const std::string>(id_)),
      links_(links),
      subscriptions_(subscriptions),
      publications_changed_(std::move(publications_changed)),
      on_own_thread_(std::move(on_own_thread)),
      balancer_(options.topic_load_balancer ? options.topic_load_balancer : round_robin_topic_balancer()),
      generation_(next_generation()),
      routing_(std::make_shared<const Routing>()) {
}

bool Publisher::publish_locked(std::string_view topic, std::string_view* key) {
    auto it = publications_.find(topic);
    const bool is_new = it == publications_.end();
    if (is_new) {
        wire::InfoPublication p;
        p.topic.assign(topic);
        std::string name = p.topic;
        it = publications_.emplace(std::move(name), std::move(p)).first;
    }
    if (key) {
        *key = it->first;
    }
    return is_new;
}

void Publisher::advertise(std::string topic, const AdvertiseOptions& options) {
    if (topic.empty() || topic.size() > 0xffff) {
        throw Error(errc::invalid_argument, "topic name must have 1 to 65535 bytes");
    }
    {
        std::lock_guard lock(mutex_);
        auto& p = publications_[topic];
        p.topic = topic;
        p.type = options.type;
        p.schema_encoding = options.schema_encoding;
        p.schema = options.schema;
        p.latched = options.latched;
        if (options.latched) {
            latched_.try_emplace(topic);
        } else {
            latched_.erase(topic);
        }
        generation_.store(next_generation(), std::memory_order_release);
    }
    publications_changed_();
}

bool Publisher::announce(std::string_view topic) {
    std::lock_guard lock(mutex_);
    return publish_locked(topic);
}

std::vector<wire::InfoPublication> Publisher::publications() const {
    std::lock_guard lock(mutex_);
    std::vector<wire::InfoPublication> out;
    out.reserve(publications_.size());
    for (const auto& [t, p] : publications_) {
        out.push_back(p);
    }
    return out;
}

bool Publisher::begin_message(std::string_view topic, CodecId codec, Buffer& frame) {
    if (topic.empty() || topic.size() > 0xffff) {
        throw Error(errc::invalid_argument, "topic name must have 1 to 65535 bytes");
    }
    // Whether anyone listens, cached per thread until the routing changes (no lock per send).
    SendCache& cache = send_cache;
    const auto generation = generation_.load(std::memory_order_acquire);
    if (cache.owner != this || cache.generation != generation || cache.topic != topic) {
        bool is_new = false;
        {
            std::lock_guard lock(mutex_);
            is_new = publish_locked(topic, &cache.topic);
            cache.owner = this;
            cache.generation = generation_.load(std::memory_order_relaxed);
            const auto own = routing_->own.find(topic);
            cache.own = own != routing_->own.end() ? &own->second : nullptr;
            const auto l = routing_->listeners.find(topic);
            cache.listeners = l != routing_->listeners.end() ? &l->second : nullptr;
            cache.listened = cache.own || cache.listeners;
            cache.latched = latched_.contains(topic);
        }
        if (is_new) {
            publications_changed_();  // senders are advertised too
        }
    }
    // A latched topic keeps its last message even while nobody listens.
    if (!cache.listened && !cache.latched) {
        return false;
    }
    if (frame.capacity() == 0) {
        frame = std::move(spare_frame());  // empty when another frame of this thread holds it
    }
    frame.clear();
    // Room for a frame as big as this thread's last one: a stream of like messages costs one
    // allocation each, not a small one and then a grown one.
    frame.reserve(last_frame_size_hint());
    wire::begin_message(frame, codec, stamp_ns(), topic);
    return true;
}

void Publisher::finish_message(std::string_view topic,
                               Buffer&& frame,
                               std::span<const std::byte> tail,
                               std::vector<std::shared_ptr<Connection>>* full_out,
                               const LoanedSend* loaned) {
    const std::size_t total = frame.size() + tail.size();
    if (total > options_.max_frame_size) {
        throw Error(errc::frame_too_large,
                    "message on '" + std::string(topic) + "' is " + std::to_string(total) + " bytes");
    }
    // A `tail` (the payload's last bytes, still the caller's) of a small frame is copied straight
    // into the outbox; of a large one (large_payload_min) written from where it is. Between the
    // two, it joins the frame, which is then shared.
    const bool small = total <= small_frame_max;
    if (!small && tail.size() < large_payload_min) {
        frame.append(tail.data(), tail.size());
        tail = {};
    }
    wire::finish_frame(frame, tail.size());
    last_frame_size_hint() = std::min<std::size_t>(frame.size(), max_size_hint);
    const bool may_wait = options_.outbox_full == OutboxFull::wait;

    std::unique_lock lock(mutex_);
    const std::shared_ptr<Subscription>* own = nullptr;
    const std::vector<RouteTarget>* listeners = nullptr;
    bool latched = false;
    if (send_cache.owner == this && send_cache.generation == generation_.load(std::memory_order_relaxed) &&
        send_cache.topic == topic) {
        own = send_cache.own;  // looked up by begin_message() in this generation
        listeners = send_cache.listeners;
        latched = send_cache.latched;
    } else {
        if (auto s = routing_->own.find(topic); s != routing_->own.end()) {
            own = &s->second;
        }
        if (auto it = routing_->listeners.find(topic); it != routing_->listeners.end()) {
            listeners = &it->second;
        }
        latched = latched_.contains(topic);
    }
    // The common case, kept short: a small message, one listening peer, connected, no listener on
    // this node, not latched, and the built-in balancer (which picks a lone candidate).
    if (small && !own && !latched && listeners && listeners->size() == 1 && !options_.topic_load_balancer &&
        listeners->front().link->up.load(std::memory_order_acquire)) {
        const RouteTarget& target = listeners->front();
        PeerLink& link = *target.link;
        std::shared_ptr<Connection> conn;
        bool now_full = false;
        if (Connection* current = link.current.load(std::memory_order_acquire);
            current && current == target.ready.get()) {
            now_full = current->send(frame.bytes(), tail, SendMode::message);
            if (now_full && may_wait) {
                conn = target.ready;
            }
        } else {
            std::lock_guard link_lock(link.mutex);
            if (link.ready) {
                now_full = link.ready->send(frame.bytes(), tail, SendMode::message);
                if (now_full && may_wait) {
                    conn = link.ready;
                }
            } else {
                now_full = links_.deliver_locked(link, joined(frame, tail));
            }
        }
        lock.unlock();
        spare_frame() = std::move(frame);
        if (conn) {
            if (full_out) {
                full_out->push_back(std::move(conn));
            } else if (!on_own_thread_()) {
                conn->wait_for_room(std::chrono::steady_clock::now() + options_.outbox_ttl);
            }
        }
        return;
    }

    // A small frame is copied into each connection's outbox (with its `tail`, if any, the
    // caller's payload); it is shared (joined and copied once) only for this node's own listener,
    // a peer still connecting or a latched value. A large one is always shared, except one with a
    // `tail` (a large payload): connected peers get it from the caller's bytes
    // (SendMode::message_wait), and it is joined into a shared copy only for the others.
    SharedFrame shared;
    if (!small && tail.empty()) {
        shared = std::make_shared<const Buffer>(std::move(frame));
    }
    auto share = [&]() -> const SharedFrame& {
        if (!shared) {
            shared = joined(frame, tail);
        }
        return shared;
    };
    struct Recycle {
        Buffer& frame;
        bool keep;
        ~Recycle() {
            if (keep) {
                spare_frame() = std::move(frame);
            }
        }
    } recycle{frame, small || !tail.empty()};

    refs_scratch_.clear();
    chosen_scratch_.clear();
    static const std::shared_ptr<Subscription> no_sub;
    const std::shared_ptr<Subscription>& self_sub = own ? *own : no_sub;
    if (const auto found = latched ? latched_.find(topic) : latched_.end(); found != latched_.end()) {
        // The last message stays for listeners that join later; those here now have it (or
        // their group's turn passed them by, as it would for any message).
        Latched& l = found->second;
        l.frame = share();
        l.delivered.clear();
        if (listeners) {
            for (const auto& t : *listeners) {
                l.delivered.insert(t.link->id);
            }
        }
        l.delivered_here = self_sub != nullptr;
    }
    // Within a name group, connected nodes are preferred over ones being reconnected.
    auto group_has_connected = [&](std::string_view group) {
        if (self_sub && group == name_) {
            return true;
        }
        if (listeners) {
            for (const auto& t : *listeners) {
                if (t.peer->name == group && t.link->up.load(std::memory_order_acquire)) {
                    return true;
                }
            }
        }
        return false;
    };
    std::vector<PeerLink*>& targets = targets_scratch_;
    targets.clear();
    bool self_added = !self_sub;
    auto add_self = [&] {
        refs_scratch_.push_back(PeerRef{id_, name_, host_, true});
        targets.push_back(nullptr);
        self_added = true;
    };
    if (listeners) {
        for (const auto& t : *listeners) {
            if (!t.link->up.load(std::memory_order_acquire) && listeners->size() + (self_sub ? 1 : 0) > 1 &&
                group_has_connected(t.peer->name)) {
                continue;
            }
            if (!self_added && id_ < t.peer->id) {
                add_self();  // balancers see candidates sorted by id, this node among them
            }
            refs_scratch_.push_back(PeerRef{t.peer->id, t.peer->name, t.peer->host, false});
            targets.push_back(t.link.get());
        }
    }
    if (!self_added) {
        add_self();
    }
    if (refs_scratch_.empty()) {
        return;
    }
    balancer_->choose(topic, refs_scratch_, chosen_scratch_);
    // Backpressure (OutboxFull::wait): the connections to wait on, once the lock is released.
    thread_local std::vector<std::shared_ptr<Connection>> full;
    full.clear();
    // Connections that get a frame with a tail, once the lock is released (it may block).
    thread_local std::vector<std::shared_ptr<Connection>> through;
    through.clear();
    for (std::size_t index : chosen_scratch_) {
        if (index >= targets.size()) {
            continue;
        }
        if (PeerLink* link = targets[index]) {
            std::lock_guard link_lock(link->mutex);
            if (!small && !tail.empty() && link->ready) {
                through.push_back(link->ready);
                continue;
            }
            const bool now_full = small && link->ready ? link->ready->send(frame.bytes(), tail, SendMode::message)
                                                       : links_.deliver_locked(*link, share());
            if (now_full && may_wait && link->ready) {
                full.push_back(link->ready);
            }
        } else {
            subscriptions_.deliver(self_sub, InboxItem::of_frame(share(), topic, id_shared_));
        }
    }
    lock.unlock();
    if (!through.empty()) {
        // Waiting (OutboxFull::wait) means writing the frame on this thread once the connection's
        // writer is idle, like a blocking socket write; never on the node's own thread.
        const bool blocking = may_wait && !full_out && !on_own_thread_();
        const auto deadline = std::chrono::steady_clock::now() + options_.outbox_ttl;
        for (const auto& conn : through) {
            if (loaned && (*loaned)(*conn)) {
                continue;  // the listener reads the bytes where they are
            }
            if (!blocking) {
                if (conn->send(frame.bytes(), tail, SendMode::message) && may_wait) {
                    full.push_back(conn);
                }
            } else if (conn->send(frame.bytes(), tail, SendMode::message_wait, deadline)) {
                conn->wait_for_room(deadline);  // it was queued, and the outbox is full
            }
        }
        through.clear();
    }
    if (!full.empty()) {
        if (full_out) {
            full_out->insert(full_out->end(), full.begin(), full.end());
        } else if (!on_own_thread_()) {
            const auto deadline = std::chrono::steady_clock::now() + options_.outbox_ttl;
            for (const auto& conn : full) {
                conn->wait_for_room(deadline);
            }
        }
        full.clear();
    }
}

void Publisher::links_changed() {
    std::lock_guard lock(mutex_);
    look_at_links_locked();
}

void Publisher::look_at_links_locked() {
    for (const auto& [topic, targets] : routing_->listeners) {
        for (const auto& t : targets) {
            std::lock_guard link_lock(t.link->mutex);
            t.ready = t.link->ready;
        }
    }
}

void Publisher::set_routing(std::shared_ptr<const Routing> routing) {
    std::lock_guard lock(mutex_);
    routing_ = std::move(routing);
    generation_.store(next_generation(), std::memory_order_release);
    look_at_links_locked();
    for (auto& [topic, latched] : latched_) {
        deliver_latched_locked(topic, latched);
    }
}

std::shared_ptr<const Routing> Publisher::routing() const {
    std::lock_guard lock(mutex_);
    return routing_;
}

void Publisher::deliver_latched_locked(const std::string& topic, Latched& latched) {
    const auto listeners = routing_->listeners.find(topic);
    std::set<std::string> now;
    if (listeners != routing_->listeners.end()) {
        for (const auto& t : listeners->second) {
            now.insert(t.link->id);
            if (latched.frame && !latched.delivered.contains(t.link->id)) {
                std::lock_guard link_lock(t.link->mutex);
                links_.deliver_locked(*t.link, latched.frame);
            }
        }
    }
    latched.delivered = std::move(now);  // one that stops listening gets it again when it returns
    const auto own = routing_->own.find(topic);
    if (own == routing_->own.end()) {
        latched.delivered_here = false;
    } else if (!latched.delivered_here) {
        latched.delivered_here = true;
        if (latched.frame) {
            subscriptions_.deliver(own->second, InboxItem::of_frame(latched.frame, topic, id_shared_));
        }
    }
}

void Publisher::stop() {
    std::lock_guard lock(mutex_);
    latched_.clear();
    routing_ = std::make_shared<const Routing>();
    generation_.store(next_generation(), std::memory_order_release);
}

}  // namespace meshy::detail

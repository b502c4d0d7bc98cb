// NodeImpl's answers to discovery (peers appearing and withdrawing) and to its connections
// (handshakes, frames, closes): what each event changes in the parts.
#include <algorithm>
#include <mutex>

#include "meshy/log.hpp"
#include "node/node_impl.hpp"
#include "topology/identity.hpp"

namespace meshy::detail {

// ------------------------------------------------------------------------------------------------
// discovery

void NodeImpl::on_peer_up(const Advert& advert) {
    if (!running() || advert.id == id_) {
        return;
    }
    bool changed = false;
    {
        std::lock_guard lock(mutex_);
        withdrawn_.erase(advert.id);
        links_.advert_changed(advert);
        changed = peers_.upsert(advert);
    }
    if (peers_.needs_info(advert.id)) {
        // Its lists did not fit its advert: they come in the Info frame of a link to it.
        auto link = links_.obtain(advert.id);
        std::lock_guard lock(link->mutex);
        links_.dial_locked(*link);
    }
    dial_for_schemas();
    if (changed) {
        rebuild_routing();
    }
}

void NodeImpl::dial_for_schemas() {
    // The schema of a typed topic this node listens to comes in the publisher's Info frame, on a
    // link this node dials (the publisher's own link to it does not speak for the publisher).
    auto topics = subs_.topics();
    std::sort(topics.begin(), topics.end());
    for (const auto& id : peers_.lacking_schemas(topics)) {
        auto link = links_.obtain(id);
        std::lock_guard lock(link->mutex);
        links_.dial_locked(*link);
    }
}

void NodeImpl::on_peer_down(const std::string& peer_id) {
    {
        std::lock_guard lock(mutex_);
        // A withdrawn advert is a goodbye only when no open link says otherwise (an avahi-daemon
        // restart withdraws every advert for a moment); the link's loss ends the peer then.
        if (auto link = links_.find(peer_id); link && link->up.load(std::memory_order_acquire)) {
            withdrawn_.insert(peer_id);
            return;
        }
        links_.withdrawn(peer_id);
        if (!peers_.remove(peer_id)) {
            return;
        }
    }
    calls_.fail_peer(peer_id, errc::connection_lost, "provider withdrew its advertisement");
    rebuild_routing();
}

void NodeImpl::on_link_lost(const std::string& peer_id, const std::string& why) {
    calls_.fail_peer(peer_id, errc::connection_lost, why);
    bool removed = false;
    {
        std::lock_guard lock(mutex_);
        if (withdrawn_.erase(peer_id) != 0) {
            links_.withdrawn(peer_id);
            removed = peers_.remove(peer_id);
        }
    }
    if (removed) {
        rebuild_routing();
    }
}

// ------------------------------------------------------------------------------------------------
// connection events

std::string NodeImpl::check_identity(const Connection& conn, const wire::Handshake& hs) const {
    const auto advert = peers_.advert(hs.id);
    if (!advert) {
        return {};  // not advertised (yet): it can only send, as any connection can
    }
    return identity_mismatch(*advert, ConnectionEnd{conn.is_unix(), conn.peer_pid(), conn.remote()}, host_);
}

bool NodeImpl::on_handshake(const std::shared_ptr<Connection>& conn, const wire::Handshake& hs, std::string& reason) {
    if (hs.id == id_) {
        reason = "refusing a connection from this node to itself";
        return false;
    }
    // A stopping node still completes the links it dialed for what it sent before stop().
    if (!running() && (!conn->outbound() || !links_.running())) {
        reason = "node stopping";
        return false;
    }
    if (!conn->outbound()) {
        // A connection only ever speaks for itself: what it sends reaches listeners and services
        // under the id it claims, and nothing it sends changes what this node knows of that peer.
        // One that contradicts the peer's advert is refused.
        if (auto why = check_identity(*conn, hs); !why.empty()) {
            reason = "refused " + conn->remote() + ": " + why;
            log(LogLevel::warn, reason);
            return false;
        }
    } else {
        links_.on_ready(conn);
        publisher_.links_changed();
    }
    conn->send(info_frame(), SendMode::control);
    if (conn->outbound()) {
        static_link_ready(conn);
    }
    log(LogLevel::debug, std::string(conn->outbound() ? "connected to " : "accepted ") + hs.name + "@" + hs.host +
                             " over " + (conn->is_unix() ? "unix" : "tcp"));
    return true;
}

void NodeImpl::on_frame(const std::shared_ptr<Connection>& conn, const wire::FrameView& frame) {
    switch (frame.type) {
        case wire::FrameType::message:
            if (!subs_.on_message(conn, frame.body)) {
                conn->close("malformed message frame from " + conn->peer().name);
            }
            break;
        case wire::FrameType::request:
            if (!services_.on_request(conn, frame.body)) {
                conn->close("malformed request frame from " + conn->peer().name);
            }
            break;
        case wire::FrameType::reply:
            if (!calls_.on_reply(conn, frame.body)) {
                conn->close("malformed reply frame from " + conn->peer().name);
            }
            break;
        case wire::FrameType::info: {
            wire::Info info;
            if (!wire::decode_info(frame.body, info)) {
                conn->close("malformed info frame from " + conn->peer().name);
                break;
            }
            // Only a link this node dialed speaks for the peer it dialed.
            if (conn->outbound() && peers_.set_info(conn->peer().id, std::move(info))) {
                rebuild_routing();
            }
            break;
        }
        case wire::FrameType::bye:
            if (conn->outbound()) {
                links_.on_goodbye(conn);
                {
                    std::lock_guard lock(mutex_);
                    withdrawn_.erase(conn->peer().id);
                    if (!peers_.remove(conn->peer().id)) {
                        break;
                    }
                }
                calls_.fail_peer(conn->peer().id, errc::connection_lost, "provider said goodbye");
                rebuild_routing();
            } else {
                conn->close("peer said goodbye");  // ends this connection, and only it
            }
            break;
        case wire::FrameType::adverts:
            on_adverts(conn, frame);
            break;
        case wire::FrameType::ping:
            break;
    }
}

void NodeImpl::on_loaned(const std::shared_ptr<Connection>& conn, LoanedMessage message) {
    subs_.on_loaned(conn, std::move(message));
}

void NodeImpl::on_frames_done(const std::shared_ptr<Connection>&) {
    subs_.on_frames_done();
}

void NodeImpl::on_closed(const std::shared_ptr<Connection>& conn, const std::string& reason) {
    calls_.fail_connection(conn.get(), errc::connection_lost, "connection to the provider lost: " + reason);
    links_.on_closed(conn, reason);
    if (conn->outbound()) {
        publisher_.links_changed();
    }
    exchange_link_closed(conn);
}

}  // namespace meshy::detail

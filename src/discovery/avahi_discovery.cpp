// mDNS/DNS-SD discovery through avahi-daemon. All Avahi objects live on one avahi_threaded_poll
// thread; start() and stop() only touch them before that thread runs or after it has been joined.
#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/address.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/timeval.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <compare>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "discovery/discovery.hpp"
#include "meshy/error.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {

namespace {

constexpr std::size_t kMaxLabel = 63;      // one DNS label: the service instance name
constexpr unsigned kFirstRetryMs = 100;    // after a failure: soon, but outside the client's own callback
constexpr unsigned kMaxRetryMs = 5000;     // while D-Bus or the daemon stays away
constexpr unsigned kReconcileMs = 5000;    // how long re-browsing may take to find every old peer again
constexpr unsigned kCoalesceMs = 50;       // update() waits this long for more updates, then republishes once
constexpr int kMaxResolveAttempts = 3;     // resolver timeouts for one instance before waiting for the browser
constexpr std::uint16_t kDiscardPort = 9;  // SRV needs a port even when TCP is off

class AvahiDiscovery final : public Discovery {
public:
    ~AvahiDiscovery() override { stop(); }

    void start(const Advert& self, DiscoveryEvents events) override {
        std::lock_guard api(api_mutex_);
        if (running_) {
            return;
        }
        self_ = self;
        if (self_.pid == 0) {
            self_.pid = ::getpid();
        }
        events_ = std::move(events);
        socket_dirs_ = expected_socket_dirs(self_);
        type_ = dns_sd_service_type(self_.domain);
        try {
            build_txt();
        } catch (...) {
            release();
            throw;
        }
        const std::string base = self_.name.empty() ? std::string("meshy") : self_.name;
        const std::string suffix = "-" + self_.id.substr(0, 8);
        service_name_ = truncate_utf8(base, kMaxLabel - suffix.size()) + suffix;

        poll_ = avahi_threaded_poll_new();
        if (poll_ == nullptr) {
            release();
            throw Error(errc::discovery_unavailable, "avahi: cannot create the event loop");
        }
        api_ = avahi_threaded_poll_get(poll_);
        reconnect_timer_ = api_->timeout_new(api_, nullptr, &AvahiDiscovery::on_reconnect_timer, this);
        reconcile_timer_ = api_->timeout_new(api_, nullptr, &AvahiDiscovery::on_reconcile_timer, this);
        update_timer_ = api_->timeout_new(api_, nullptr, &AvahiDiscovery::on_update_timer, this);

        // Without NO_FAIL the call fails at once when no daemon owns its D-Bus name, which is exactly
        // the "unreachable" answer make_discovery() needs to fall back on.
        starting_ = true;
        stopping_ = false;
        int error = 0;
        AvahiClient* client = avahi_client_new(api_, AvahiClientFlags(0), &AvahiDiscovery::on_client, this, &error);
        starting_ = false;
        if (client == nullptr || avahi_client_get_state(client) == AVAHI_CLIENT_FAILURE) {
            if (client != nullptr) {
                error = avahi_client_errno(client);
            }
            client_ = client;  // the callback may have stored a client that avahi_client_new() already freed
            release();
            throw Error(errc::discovery_unavailable,
                        std::string("avahi-daemon not reachable: ") + avahi_strerror(error));
        }
        client_ = client;
        if (avahi_threaded_poll_start(poll_) < 0) {
            release();
            throw Error(errc::discovery_unavailable, "avahi: cannot start the event loop thread");
        }
        running_ = true;
        log(LogLevel::debug, "avahi discovery: publishing " + service_name_ + " as " + type_);
    }

    void update(const Advert& self) override {
        std::lock_guard api(api_mutex_);
        if (!running_) {
            return;
        }
        // The poll thread owns every Avahi object; its lock is how another thread may touch them.
        avahi_threaded_poll_lock(poll_);
        const bool armed = pending_.has_value();
        pending_ = self;
        if (!armed) {
            arm(update_timer_, kCoalesceMs);
        }
        avahi_threaded_poll_unlock(poll_);
    }

    void stop() override {
        std::lock_guard api(api_mutex_);
        if (!running_) {
            return;
        }
        stopping_ = true;
        // Joins the poll thread, so nothing below races with a callback.
        avahi_threaded_poll_stop(poll_);
        release();
        running_ = false;
    }

    const char* backend_name() const override { return "avahi"; }

private:
    struct InstanceKey {
        AvahiIfIndex interface = AVAHI_IF_UNSPEC;
        AvahiProtocol protocol = AVAHI_PROTO_UNSPEC;
        std::string name;
        std::string domain;
        auto operator<=>(const InstanceKey&) const = default;
    };

    // One browse result: a service instance name seen on one interface.
    struct Instance {
        AvahiServiceResolver* resolver = nullptr;
        bool browsed = true;  // false after a reconnect until the new browser reports it again
        int resolve_attempts = 0;
        std::string id;  // set once resolved to a peer we report; empty for ourselves / other domains
        std::uint64_t order = 0;
        Advert advert;
    };

    // One node, possibly seen through several instances (interfaces).
    struct Peer {
        std::set<InstanceKey> instances;
        std::optional<Advert> reported;
    };

    // ----- C callbacks: each one only forwards, and nothing may unwind into Avahi. -----

    static void on_client(AvahiClient* client, AvahiClientState state, void* self) {
        guarded("client callback", [&] { static_cast<AvahiDiscovery*>(self)->client_changed(client, state); });
    }

    static void on_group(AvahiEntryGroup* group, AvahiEntryGroupState state, void* self) {
        guarded("entry group callback", [&] { static_cast<AvahiDiscovery*>(self)->group_changed(group, state); });
    }

    static void on_browse(AvahiServiceBrowser*,
                          AvahiIfIndex interface,
                          AvahiProtocol protocol,
                          AvahiBrowserEvent event,
                          const char* name,
                          const char* /*type*/,
                          const char* domain,
                          AvahiLookupResultFlags flags,
                          void* self) {
        guarded("browse callback",
                [&] { static_cast<AvahiDiscovery*>(self)->browsed(interface, protocol, event, name, domain, flags); });
    }

    static void on_resolve(AvahiServiceResolver* resolver,
                           AvahiIfIndex interface,
                           AvahiProtocol protocol,
                           AvahiResolverEvent event,
                           const char* name,
                           const char* /*type*/,
                           const char* domain,
                           const char* /*host_name*/,
                           const AvahiAddress* address,
                           std::uint16_t /*port*/,
                           AvahiStringList* txt,
                           AvahiLookupResultFlags /*flags*/,
                           void* self) {
        guarded("resolve callback", [&] {
            static_cast<AvahiDiscovery*>(self)->resolved(resolver, interface, protocol, event, name, domain, address,
                                                         txt);
        });
    }

    static void on_reconnect_timer(AvahiTimeout*, void* self) {
        guarded("reconnect timer", [&] { static_cast<AvahiDiscovery*>(self)->reconnect(); });
    }

    static void on_reconcile_timer(AvahiTimeout*, void* self) {
        guarded("reconcile timer", [&] { static_cast<AvahiDiscovery*>(self)->reconcile(); });
    }

    static void on_update_timer(AvahiTimeout*, void* self) {
        guarded("update timer", [&] { static_cast<AvahiDiscovery*>(self)->republish(); });
    }

    template <typename Body>
    static void guarded(const char* where, Body&& body) noexcept {
        try {
            body();
        } catch (const std::exception& e) {
            try {
                log(LogLevel::error, std::string("avahi discovery: ") + where + ": " + e.what());
            } catch (...) {
            }
        } catch (...) {
            try {
                log(LogLevel::error, std::string("avahi discovery: ") + where + ": unknown exception");
            } catch (...) {
            }
        }
    }

    // ----- client and publishing -----

    void client_changed(AvahiClient* client, AvahiClientState state) {
        if (stopping_) {
            return;
        }
        // The first callback arrives from inside avahi_client_new(), before its result is stored.
        client_ = client;
        switch (state) {
            case AVAHI_CLIENT_S_RUNNING:
                retry_ms_ = kFirstRetryMs;
                if (disconnected_) {
                    disconnected_ = false;
                    log(LogLevel::info, "avahi-daemon reachable again; re-publishing " + service_name_);
                    arm(reconcile_timer_, kReconcileMs);
                }
                register_service(client);
                if (browser_ == nullptr) {
                    browser_ =
                        avahi_service_browser_new(client, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET, type_.c_str(), nullptr,
                                                  AvahiLookupFlags(0), &AvahiDiscovery::on_browse, this);
                    if (browser_ == nullptr) {
                        log(LogLevel::warn, std::string("avahi discovery: cannot browse: ") +
                                                avahi_strerror(avahi_client_errno(client)));
                    }
                }
                break;
            case AVAHI_CLIENT_S_COLLISION:
            case AVAHI_CLIENT_S_REGISTERING:
                // The daemon is (re)probing its host name; records added now would be withdrawn, so
                // they go back in when the state returns to running.
                if (group_ != nullptr) {
                    avahi_entry_group_reset(group_);
                }
                break;
            case AVAHI_CLIENT_FAILURE:
                if (starting_) {
                    return;  // start() reports it
                }
                if (!disconnected_) {
                    disconnected_ = true;
                    log(LogLevel::warn, std::string("lost avahi-daemon (") +
                                            avahi_strerror(avahi_client_errno(client)) + "); reconnecting");
                }
                // Freeing the client from inside its own callback is not allowed: do it from a timer.
                schedule_reconnect();
                break;
            case AVAHI_CLIENT_CONNECTING:
                log(LogLevel::debug, "avahi discovery: waiting for avahi-daemon");
                break;
        }
    }

    void register_service(AvahiClient* client) {
        if (group_ == nullptr) {
            group_ = avahi_entry_group_new(client, &AvahiDiscovery::on_group, this);
            if (group_ == nullptr) {
                log(LogLevel::warn, std::string("avahi discovery: cannot create entry group: ") +
                                        avahi_strerror(avahi_client_errno(client)));
                return;
            }
        }
        if (!avahi_entry_group_is_empty(group_)) {
            return;
        }
        const std::uint16_t port = self_.tcp_port != 0 ? self_.tcp_port : kDiscardPort;
        // A local collision is reported synchronously; a handful of renames always resolves it.
        for (int attempt = 0; attempt < 16; ++attempt) {
            const int rc = avahi_entry_group_add_service_strlst(group_, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET,
                                                                AvahiPublishFlags(0), service_name_.c_str(),
                                                                type_.c_str(), nullptr, nullptr, port, txt_);
            if (rc == AVAHI_ERR_COLLISION) {
                rename_service();
                avahi_entry_group_reset(group_);
                continue;
            }
            if (rc < 0) {
                log(LogLevel::warn, std::string("avahi discovery: cannot add service: ") + avahi_strerror(rc));
                return;
            }
            if (const int commit = avahi_entry_group_commit(group_); commit < 0) {
                log(LogLevel::warn, std::string("avahi discovery: cannot publish: ") + avahi_strerror(commit));
            }
            return;
        }
        log(LogLevel::warn, "avahi discovery: no free service name after 16 renames");
    }

    void group_changed(AvahiEntryGroup* group, AvahiEntryGroupState state) {
        if (stopping_) {
            return;
        }
        group_ = group;
        switch (state) {
            case AVAHI_ENTRY_GROUP_ESTABLISHED:
                log(LogLevel::debug, "avahi discovery: published " + service_name_);
                break;
            case AVAHI_ENTRY_GROUP_COLLISION:
                rename_service();
                avahi_entry_group_reset(group);
                register_service(avahi_entry_group_get_client(group));
                break;
            case AVAHI_ENTRY_GROUP_FAILURE:
                // Usually the client failing underneath; the reconnect path republishes.
                log(LogLevel::debug, std::string("avahi discovery: entry group failed: ") +
                                         avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(group))));
                break;
            case AVAHI_ENTRY_GROUP_UNCOMMITED:
            case AVAHI_ENTRY_GROUP_REGISTERING:
                break;
        }
    }

    void rename_service() {
        char* alternative = avahi_alternative_service_name(service_name_.c_str());
        if (alternative == nullptr) {
            return;
        }
        const std::string old = std::exchange(service_name_, alternative);
        avahi_free(alternative);
        log(LogLevel::info, "avahi discovery: service name " + old + " taken; using " + service_name_);
    }

    // Lists that do not fit kTxtLayout's budget are left out (c=0): peers then fetch them over a link.
    void build_txt() {
        const AdvertFields fields = advert_to_fields(self_, kTxtLayout);
        AvahiStringList* txt = nullptr;
        for (const auto& [key, value] : fields) {
            txt = avahi_string_list_add_pair_arbitrary(
                txt, key.c_str(), reinterpret_cast<const std::uint8_t*>(value.data()), value.size());
        }
        txt = avahi_string_list_reverse(txt);  // add_pair prepends
        if (txt_ != nullptr) {
            avahi_string_list_free(txt_);
        }
        txt_ = txt;
        const bool complete = fields.empty() || fields.back().first != "c";
        if (!complete && !logged_incomplete_) {
            logged_incomplete_ = true;
            log(LogLevel::debug, "avahi discovery: topics and services exceed the " +
                                     std::to_string(kTxtLayout.budget) +
                                     "-byte TXT budget; peers fetch them over a link");
        }
    }

    // Runs kCoalesceMs after the first of a burst of update() calls, with the last one's advert.
    void republish() {
        api_->timeout_update(update_timer_, nullptr);
        if (!pending_) {
            return;
        }
        Advert next = std::move(*pending_);
        pending_.reset();
        if (next.pid == 0) {
            next.pid = self_.pid;
        }
        const Advert previous = std::exchange(self_, std::move(next));
        try {
            build_txt();
        } catch (const std::exception& e) {
            self_ = previous;
            log(LogLevel::warn, std::string("avahi discovery: cannot republish: ") + e.what());
            return;
        }
        if (group_ == nullptr || avahi_entry_group_is_empty(group_)) {
            return;  // register_service() publishes txt_ when the client is back
        }
        const int rc =
            avahi_entry_group_update_service_txt_strlst(group_, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET, AvahiPublishFlags(0),
                                                        service_name_.c_str(), type_.c_str(), nullptr, txt_);
        if (rc < 0) {
            log(LogLevel::warn,
                std::string("avahi discovery: cannot update TXT record: ") + avahi_strerror(rc) + "; publishing again");
            avahi_entry_group_reset(group_);
            register_service(avahi_entry_group_get_client(group_));
        }
    }

    // ----- reconnecting -----

    void arm(AvahiTimeout* timer, unsigned ms) {
        timeval when{};
        avahi_elapse_time(&when, ms, 0);
        api_->timeout_update(timer, &when);
    }

    void schedule_reconnect() {
        arm(reconnect_timer_, retry_ms_);
        retry_ms_ = std::min(retry_ms_ * 2, kMaxRetryMs);
    }

    void reconnect() {
        api_->timeout_update(reconnect_timer_, nullptr);
        drop_client();
        int error = 0;
        // NO_FAIL: with the daemon still down the client waits for it to appear on the bus instead of
        // failing. Only a missing D-Bus makes this return null, hence the timer.
        AvahiClient* client = avahi_client_new(api_, AVAHI_CLIENT_NO_FAIL, &AvahiDiscovery::on_client, this, &error);
        if (client == nullptr) {
            client_ = nullptr;  // the callback may have stored the client avahi_client_new() then freed
            log(LogLevel::debug, std::string("avahi discovery: reconnect failed: ") + avahi_strerror(error));
            schedule_reconnect();
            return;
        }
        client_ = client;
    }

    // Freeing the client frees every browser, resolver and group made from it.
    void drop_client() {
        if (client_ != nullptr) {
            avahi_client_free(client_);
        }
        client_ = nullptr;
        group_ = nullptr;
        browser_ = nullptr;
        for (auto& [key, instance] : instances_) {
            instance.resolver = nullptr;
            instance.browsed = false;
            instance.resolve_attempts = 0;
        }
    }

    // After a reconnect, peers the new browser has not reported again are gone for good.
    void reconcile() {
        api_->timeout_update(reconcile_timer_, nullptr);
        std::vector<InstanceKey> gone;
        for (const auto& [key, instance] : instances_) {
            if (!instance.browsed) {
                gone.push_back(key);
            }
        }
        for (const auto& key : gone) {
            forget(key);
        }
    }

    // ----- browsing and resolving -----

    void browsed(AvahiIfIndex interface,
                 AvahiProtocol protocol,
                 AvahiBrowserEvent event,
                 const char* name,
                 const char* domain,
                 AvahiLookupResultFlags flags) {
        if (stopping_) {
            return;
        }
        switch (event) {
            case AVAHI_BROWSER_NEW: {
                if ((flags & AVAHI_LOOKUP_RESULT_OUR_OWN) != 0) {
                    return;
                }
                InstanceKey key{interface, protocol, name, domain};
                Instance& instance = instances_[key];
                instance.browsed = true;
                if (instance.resolver == nullptr) {
                    instance.resolve_attempts = 0;
                    start_resolver(key, instance);
                }
                break;
            }
            case AVAHI_BROWSER_REMOVE:
                forget(InstanceKey{interface, protocol, name, domain});
                break;
            case AVAHI_BROWSER_FAILURE:
                if (!disconnected_) {
                    disconnected_ = true;
                    const int error = client_ != nullptr ? avahi_client_errno(client_) : AVAHI_ERR_DISCONNECTED;
                    log(LogLevel::warn,
                        std::string("avahi browsing failed (") + avahi_strerror(error) + "); reconnecting");
                }
                schedule_reconnect();
                break;
            case AVAHI_BROWSER_ALL_FOR_NOW:
            case AVAHI_BROWSER_CACHE_EXHAUSTED:
                break;
        }
    }

    void start_resolver(const InstanceKey& key, Instance& instance) {
        if (client_ == nullptr) {
            return;
        }
        ++instance.resolve_attempts;
        instance.resolver = avahi_service_resolver_new(client_, key.interface, key.protocol, key.name.c_str(),
                                                       type_.c_str(), key.domain.c_str(), AVAHI_PROTO_INET,
                                                       AvahiLookupFlags(0), &AvahiDiscovery::on_resolve, this);
        if (instance.resolver == nullptr) {
            log(LogLevel::debug,
                "avahi discovery: cannot resolve " + key.name + ": " + avahi_strerror(avahi_client_errno(client_)));
        }
    }

    void resolved(AvahiServiceResolver* resolver,
                  AvahiIfIndex interface,
                  AvahiProtocol protocol,
                  AvahiResolverEvent event,
                  const char* name,
                  const char* domain,
                  const AvahiAddress* address,
                  AvahiStringList* txt) {
        if (stopping_) {
            return;
        }
        const InstanceKey key{interface, protocol, name != nullptr ? name : "", domain != nullptr ? domain : ""};
        const auto it = instances_.find(key);
        if (it == instances_.end() || it->second.resolver != resolver) {
            return;  // a leftover from an instance already forgotten
        }
        Instance& instance = it->second;
        if (event == AVAHI_RESOLVER_FAILURE) {
            const int error = client_ != nullptr ? avahi_client_errno(client_) : AVAHI_ERR_DISCONNECTED;
            log(LogLevel::debug, "avahi discovery: resolving " + key.name + " failed: " + avahi_strerror(error));
            avahi_service_resolver_free(resolver);
            instance.resolver = nullptr;
            // A timeout usually means a lost packet; anything else will not get better by retrying.
            if (error == AVAHI_ERR_TIMEOUT && instance.browsed && instance.resolve_attempts < kMaxResolveAttempts) {
                start_resolver(key, instance);
            }
            return;
        }
        instance.resolve_attempts = 0;

        std::vector<std::string_view> strings;
        for (AvahiStringList* item = txt; item != nullptr; item = avahi_string_list_get_next(item)) {
            strings.emplace_back(reinterpret_cast<const char*>(avahi_string_list_get_text(item)),
                                 avahi_string_list_get_size(item));
        }
        Advert advert;
        std::string new_id;
        std::string reason;
        std::string note;
        if (!advert_from_fields(txt_strings_to_fields(strings), advert, &reason)) {
            warn_once(key.name + reason,
                      "avahi discovery: ignoring " + key.name + ": malformed TXT record (" + reason + ")");
        } else if (advert.id == self_.id) {
            // Our own service seen through another client, e.g. after a restart with the same id.
        } else if (advert.domain != self_.domain) {
            // Another domain whose name hashes to the same service type.
            log(LogLevel::debug, "avahi discovery: ignoring " + key.name + " of domain '" + advert.domain + "'");
        } else if (const std::string refused = check_peer_advert(advert, self_, socket_dirs_, note); !refused.empty()) {
            warn_once(advert.id + refused,
                      "avahi discovery: ignoring node " + advert.name + " (" + advert.id + "): " + refused);
        } else {
            if (!note.empty()) {
                warn_once(advert.id + note, "avahi discovery: node " + advert.name + " (" + advert.id + "): " + note);
            }
            if (advert.tcp_port == 0) {
                advert.tcp_address.clear();
            } else if (advert.tcp_address.empty() && address != nullptr) {
                char text[AVAHI_ADDRESS_STR_MAX];
                avahi_address_snprint(text, sizeof text, address);
                advert.tcp_address = text;
            }
            new_id = advert.id;
        }

        const std::string old_id = instance.id;
        if (!old_id.empty() && old_id != new_id) {
            instance.id.clear();
            detach(old_id, key);
        }
        if (new_id.empty()) {
            return;
        }
        if (instance.id.empty()) {
            instance.order = next_order_++;
        }
        instance.id = new_id;
        instance.advert = std::move(advert);
        peers_[new_id].instances.insert(key);
        update_peer(new_id);
    }

    // One line per peer and problem, not one per re-resolution (bounded against a flood of records).
    void warn_once(const std::string& key, const std::string& message) {
        if (warned_.size() >= 1024) {
            warned_.clear();
        }
        if (warned_.insert(key).second) {
            log(LogLevel::warn, message);
        }
    }

    void forget(const InstanceKey& key) {
        const auto it = instances_.find(key);
        if (it == instances_.end()) {
            return;
        }
        if (it->second.resolver != nullptr) {
            avahi_service_resolver_free(it->second.resolver);
        }
        const std::string id = it->second.id;
        instances_.erase(it);
        if (!id.empty()) {
            detach(id, key);
        }
    }

    void detach(const std::string& id, const InstanceKey& key) {
        const auto peer = peers_.find(id);
        if (peer != peers_.end()) {
            peer->second.instances.erase(key);
            update_peer(id);
        }
    }

    // Reports the advert of the peer's longest-known instance, and only when that changes, so a node
    // visible on several interfaces comes up once and goes down with its last instance.
    void update_peer(const std::string& id) {
        const auto it = peers_.find(id);
        if (it == peers_.end()) {
            return;
        }
        Peer& peer = it->second;
        const Instance* best = nullptr;
        for (const auto& key : peer.instances) {
            const Instance& candidate = instances_.at(key);
            if (best == nullptr || candidate.order < best->order) {
                best = &candidate;
            }
        }
        if (best == nullptr) {
            const bool was_reported = peer.reported.has_value();
            peers_.erase(it);
            if (was_reported && events_.on_peer_down) {
                guarded("on_peer_down", [&] { events_.on_peer_down(id); });
            }
            return;
        }
        if (peer.reported == best->advert) {
            return;
        }
        peer.reported = best->advert;
        if (events_.on_peer_up) {
            guarded("on_peer_up", [&] { events_.on_peer_up(*peer.reported); });
        }
    }

    // ----- teardown -----

    // Frees everything; only with no poll thread running (before it starts, or after it was joined).
    void release() {
        for (auto& [key, instance] : instances_) {
            if (instance.resolver != nullptr) {
                avahi_service_resolver_free(instance.resolver);
            }
        }
        instances_.clear();
        peers_.clear();
        if (browser_ != nullptr) {
            avahi_service_browser_free(browser_);
            browser_ = nullptr;
        }
        // Freeing the group is what sends the goodbye packets peers use to see us leave.
        if (group_ != nullptr) {
            avahi_entry_group_free(group_);
            group_ = nullptr;
        }
        if (client_ != nullptr) {
            avahi_client_free(client_);
            client_ = nullptr;
        }
        if (api_ != nullptr) {
            if (reconnect_timer_ != nullptr) {
                api_->timeout_free(reconnect_timer_);
            }
            if (reconcile_timer_ != nullptr) {
                api_->timeout_free(reconcile_timer_);
            }
            if (update_timer_ != nullptr) {
                api_->timeout_free(update_timer_);
            }
        }
        reconnect_timer_ = nullptr;
        reconcile_timer_ = nullptr;
        update_timer_ = nullptr;
        pending_.reset();
        warned_.clear();
        logged_incomplete_ = false;
        api_ = nullptr;
        if (poll_ != nullptr) {
            avahi_threaded_poll_free(poll_);
            poll_ = nullptr;
        }
        if (txt_ != nullptr) {
            avahi_string_list_free(txt_);
            txt_ = nullptr;
        }
        events_ = {};
        disconnected_ = false;
        retry_ms_ = kFirstRetryMs;
    }

    std::mutex api_mutex_;  // serializes start() and stop(); never taken on the poll thread
    bool running_ = false;
    std::atomic<bool> starting_{false};
    std::atomic<bool> stopping_{false};

    // Set up by start(), then owned by the poll thread until stop() has joined it.
    Advert self_;
    DiscoveryEvents events_;
    std::string type_;
    std::string service_name_;
    AvahiStringList* txt_ = nullptr;
    AvahiThreadedPoll* poll_ = nullptr;
    const AvahiPoll* api_ = nullptr;
    AvahiClient* client_ = nullptr;
    AvahiEntryGroup* group_ = nullptr;
    AvahiServiceBrowser* browser_ = nullptr;
    AvahiTimeout* reconnect_timer_ = nullptr;
    AvahiTimeout* reconcile_timer_ = nullptr;
    AvahiTimeout* update_timer_ = nullptr;
    std::optional<Advert> pending_;  // set by update() under the poll lock, published by republish()
    std::vector<std::string> socket_dirs_;
    std::set<std::string> warned_;
    bool logged_incomplete_ = false;
    bool disconnected_ = false;  // an outage was logged and its recovery is not yet
    unsigned retry_ms_ = kFirstRetryMs;
    std::uint64_t next_order_ = 0;
    std::map<InstanceKey, Instance> instances_;
    std::map<std::string, Peer> peers_;
};

}  // namespace

std::unique_ptr<Discovery> make_avahi_discovery() {
    return std::make_unique<AvahiDiscovery>();
}

}  // namespace meshy::detail

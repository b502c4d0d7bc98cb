// mDNS/DNS-SD discovery through avahi-daemon. All Avahi objects live on one avahi_threaded_poll
// thread; start() and stop() only touch them before that thread runs or after it has been joined.
//
// Each node publishes a DNS-SD service (what `avahi-browse` shows) and, for its peers, its advert
// as one record of a shared TXT record set, _adverts.<service type>.local. A node watches that one
// name with one record browser and so learns every advert, and every change of one, without
// resolving services: resolving each peer would take N*(N-1) resolvers, each a D-Bus object and
// queries in the daemon, and a mesh of 200 nodes on one host never converged that way. Addresses
// come from one host name resolver per host, shared by all the nodes that run there.
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
constexpr unsigned kHostRetryMs = 1000;    // a host name that did not resolve is asked again
constexpr std::uint32_t kAdvertTtl = 120;  // seconds, as Avahi's host name records
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
        adverts_name_ = "_adverts." + type_ + ".local";
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
        host_timer_ = api_->timeout_new(api_, nullptr, &AvahiDiscovery::on_host_timer, this);

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
    // One node's advert record as seen on one interface. Ordered by id first, so that all the
    // records of one node are neighbours.
    struct RecordKey {
        std::string id;
        AvahiIfIndex interface = AVAHI_IF_UNSPEC;
        AvahiProtocol protocol = AVAHI_PROTO_UNSPEC;
        auto operator<=>(const RecordKey&) const = default;
    };

    struct Seen {
        std::string rdata;    // as announced, to match its removal
        Advert advert;        // checked; tcp_address still empty when it comes from host below
        std::string host;     // mDNS host name whose address the advert needs ("" when none)
        bool browsed = true;  // false after a reconnect until the new browser reports it again
        std::uint64_t order = 0;
    };

    struct HostKey {
        std::string name;
        AvahiIfIndex interface = AVAHI_IF_UNSPEC;
        AvahiProtocol protocol = AVAHI_PROTO_UNSPEC;
        auto operator<=>(const HostKey&) const = default;
    };

    // A host that nodes run on: resolved once for all of them, kept open to follow its address.
    struct Host {
        AvahiHostNameResolver* resolver = nullptr;
        std::string address;
    };

    // ----- C callbacks: each one only forwards, and nothing may unwind into Avahi. -----

    static void on_client(AvahiClient* client, AvahiClientState state, void* self) {
        guarded("client callback", [&] { static_cast<AvahiDiscovery*>(self)->client_changed(client, state); });
    }

    static void on_group(AvahiEntryGroup* group, AvahiEntryGroupState state, void* self) {
        guarded("entry group callback", [&] { static_cast<AvahiDiscovery*>(self)->group_changed(group, state); });
    }

    static void on_advert_group(AvahiEntryGroup* group, AvahiEntryGroupState state, void* self) {
        guarded("advert group callback",
                [&] { static_cast<AvahiDiscovery*>(self)->advert_group_changed(group, state); });
    }

    static void on_advert_record(AvahiRecordBrowser*,
                                 AvahiIfIndex interface,
                                 AvahiProtocol protocol,
                                 AvahiBrowserEvent event,
                                 const char* /*name*/,
                                 std::uint16_t /*clazz*/,
                                 std::uint16_t /*type*/,
                                 const void* rdata,
                                 std::size_t size,
                                 AvahiLookupResultFlags /*flags*/,
                                 void* self) {
        guarded("advert browse callback",
                [&] { static_cast<AvahiDiscovery*>(self)->advert_record(interface, protocol, event, rdata, size); });
    }

    static void on_host(AvahiHostNameResolver* resolver,
                        AvahiIfIndex interface,
                        AvahiProtocol protocol,
                        AvahiResolverEvent event,
                        const char* name,
                        const AvahiAddress* address,
                        AvahiLookupResultFlags /*flags*/,
                        void* self) {
        guarded("host resolver callback", [&] {
            static_cast<AvahiDiscovery*>(self)->host_resolved(resolver, interface, protocol, event, name, address);
        });
    }

    static void on_host_timer(AvahiTimeout*, void* self) {
        guarded("host timer", [&] { static_cast<AvahiDiscovery*>(self)->resolve_hosts(); });
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
                publish_advert(client, false);
                if (browser_ == nullptr) {
                    browser_ = avahi_record_browser_new(client, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET,
                                                        adverts_name_.c_str(), AVAHI_DNS_CLASS_IN, AVAHI_DNS_TYPE_TXT,
                                                        AvahiLookupFlags(0), &AvahiDiscovery::on_advert_record, this);
                    if (browser_ == nullptr) {
                        log(LogLevel::warn, std::string("avahi discovery: cannot browse: ") +
                                                avahi_strerror(avahi_client_errno(client)));
                    }
                }
                resolve_hosts();
                break;
            case AVAHI_CLIENT_S_COLLISION:
            case AVAHI_CLIENT_S_REGISTERING:
                // The daemon is (re)probing its host name; records added now would be withdrawn, so
                // they go back in when the state returns to running.
                if (group_ != nullptr) {
                    avahi_entry_group_reset(group_);
                }
                if (advert_group_ != nullptr) {
                    avahi_entry_group_reset(advert_group_);
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

    // The advert record: the service's TXT strings and the mDNS host name to resolve for the
    // address. Shared (not probed), so a change replaces it at once. `update` rewrites it in place.
    void publish_advert(AvahiClient* client, bool update) {
        if (advert_group_ == nullptr) {
            advert_group_ = avahi_entry_group_new(client, &AvahiDiscovery::on_advert_group, this);
            if (advert_group_ == nullptr) {
                log(LogLevel::warn, std::string("avahi discovery: cannot create the advert group: ") +
                                        avahi_strerror(avahi_client_errno(client)));
                return;
            }
        }
        const bool empty = avahi_entry_group_is_empty(advert_group_) != 0;
        if (!empty && !update) {
            return;
        }
        std::string rdata;
        for (AvahiStringList* item = txt_; item != nullptr; item = avahi_string_list_get_next(item)) {
            rdata += static_cast<char>(avahi_string_list_get_size(item));
            rdata.append(reinterpret_cast<const char*>(avahi_string_list_get_text(item)),
                         avahi_string_list_get_size(item));
        }
        if (const char* host = avahi_client_get_host_name_fqdn(client); host != nullptr) {
            const std::string field = std::string("mdns=") + host;
            if (field.size() <= 255) {
                rdata += static_cast<char>(field.size());
                rdata += field;
            }
        }
        int rc = avahi_entry_group_add_record(
            advert_group_, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET, empty ? AvahiPublishFlags(0) : AVAHI_PUBLISH_UPDATE,
            adverts_name_.c_str(), AVAHI_DNS_CLASS_IN, AVAHI_DNS_TYPE_TXT, kAdvertTtl, rdata.data(), rdata.size());
        if (rc >= 0 && empty) {
            rc = avahi_entry_group_commit(advert_group_);
        }
        if (rc < 0) {
            log(LogLevel::warn, std::string("avahi discovery: cannot publish the advert: ") + avahi_strerror(rc));
            avahi_entry_group_reset(advert_group_);
        }
    }

    void advert_group_changed(AvahiEntryGroup* group, AvahiEntryGroupState state) {
        if (stopping_) {
            return;
        }
        advert_group_ = group;
        if (state == AVAHI_ENTRY_GROUP_FAILURE) {
            log(LogLevel::debug, std::string("avahi discovery: advert group failed: ") +
                                     avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(group))));
        }
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
        if (client_ != nullptr && advert_group_ != nullptr) {
            publish_advert(client_, true);
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
        advert_group_ = nullptr;
        browser_ = nullptr;
        for (auto& [key, seen] : seen_) {
            seen.browsed = false;
        }
        for (auto& [key, host] : hosts_) {
            host.resolver = nullptr;
        }
    }

    // After a reconnect, peers the new browser has not reported again are gone for good.
    void reconcile() {
        api_->timeout_update(reconcile_timer_, nullptr);
        std::vector<RecordKey> gone;
        for (const auto& [key, seen] : seen_) {
            if (!seen.browsed) {
                gone.push_back(key);
            }
        }
        for (const auto& key : gone) {
            seen_.erase(key);
            update_peer(key.id);
        }
    }

    // ----- browsing -----

    void advert_record(
        AvahiIfIndex interface, AvahiProtocol protocol, AvahiBrowserEvent event, const void* rdata, std::size_t size) {
        if (stopping_) {
            return;
        }
        switch (event) {
            case AVAHI_BROWSER_NEW:
                advert_seen(interface, protocol, rdata, size);
                break;
            case AVAHI_BROWSER_REMOVE:
                advert_removed(interface, protocol, rdata, size);
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

    void advert_seen(AvahiIfIndex interface, AvahiProtocol protocol, const void* rdata, std::size_t size) {
        std::vector<std::string_view> strings;
        if (!txt_rdata_strings(std::string_view(static_cast<const char*>(rdata), size), strings)) {
            warn_once("record-strings", "avahi discovery: ignoring an advert record: a string runs past its end");
            return;
        }
        const AdvertFields fields = txt_strings_to_fields(strings);
        Advert advert;
        std::string reason;
        std::string note;
        if (!advert_from_fields(fields, advert, &reason)) {
            warn_once("record" + reason, "avahi discovery: ignoring an advert record: malformed (" + reason + ")");
            return;
        }
        if (advert.id == self_.id) {
            return;
        }
        if (advert.domain != self_.domain) {
            // Another domain whose name hashes to the same service type.
            log(LogLevel::debug, "avahi discovery: ignoring node " + advert.id + " of domain '" + advert.domain + "'");
            return;
        }
        if (const std::string refused = check_peer_advert(advert, self_, socket_dirs_, note); !refused.empty()) {
            warn_once(advert.id + refused,
                      "avahi discovery: ignoring node " + advert.name + " (" + advert.id + "): " + refused);
            return;
        }
        if (!note.empty()) {
            warn_once(advert.id + note, "avahi discovery: node " + advert.name + " (" + advert.id + "): " + note);
        }
        std::string host;
        if (advert.tcp_port == 0) {
            advert.tcp_address.clear();
        } else if (advert.tcp_address.empty()) {
            for (const auto& [key, value] : fields) {
                if (key == "mdns" && !value.empty() && value.size() <= 255) {
                    host = value;
                }
            }
        }
        const RecordKey key{advert.id, interface, protocol};
        auto [it, inserted] = seen_.try_emplace(key);
        Seen& seen = it->second;
        if (!inserted && seen.browsed && advert.revision < seen.advert.revision) {
            return;  // an older record still in a cache; its removal follows
        }
        if (inserted) {
            seen.order = next_order_++;
        }
        seen.rdata.assign(static_cast<const char*>(rdata), size);
        seen.advert = std::move(advert);
        seen.host = std::move(host);
        seen.browsed = true;
        if (!seen.host.empty()) {
            want_host(HostKey{seen.host, interface, protocol});
        }
        update_peer(key.id);
    }

    void advert_removed(AvahiIfIndex interface, AvahiProtocol protocol, const void* rdata, std::size_t size) {
        std::vector<std::string_view> strings;
        Advert advert;
        if (!txt_rdata_strings(std::string_view(static_cast<const char*>(rdata), size), strings) ||
            !advert_from_fields(txt_strings_to_fields(strings), advert)) {
            return;
        }
        const auto it = seen_.find(RecordKey{advert.id, interface, protocol});
        // A replaced record goes after its successor arrived: only the current one's removal counts.
        if (it == seen_.end() || it->second.rdata != std::string_view(static_cast<const char*>(rdata), size)) {
            return;
        }
        seen_.erase(it);
        update_peer(advert.id);
        release_unused_hosts();
    }

    // ----- host addresses -----

    void want_host(const HostKey& key) {
        Host& host = hosts_[key];
        if (host.resolver == nullptr && host.address.empty()) {
            start_host_resolver(key, host);
        }
    }

    void start_host_resolver(const HostKey& key, Host& host) {
        if (client_ == nullptr) {
            return;
        }
        host.resolver =
            avahi_host_name_resolver_new(client_, key.interface, key.protocol, key.name.c_str(), AVAHI_PROTO_INET,
                                         AvahiLookupFlags(0), &AvahiDiscovery::on_host, this);
        if (host.resolver == nullptr) {
            log(LogLevel::debug, "avahi discovery: cannot resolve host " + key.name + ": " +
                                     avahi_strerror(avahi_client_errno(client_)));
            arm(host_timer_, kHostRetryMs);
        }
    }

    // Hosts without a resolver (after a failure or a reconnect) that nodes still need.
    void resolve_hosts() {
        api_->timeout_update(host_timer_, nullptr);
        for (auto& [key, host] : hosts_) {
            if (host.resolver == nullptr) {
                start_host_resolver(key, host);
            }
        }
    }

    void host_resolved(AvahiHostNameResolver* resolver,
                       AvahiIfIndex interface,
                       AvahiProtocol protocol,
                       AvahiResolverEvent event,
                       const char* name,
                       const AvahiAddress* address) {
        if (stopping_) {
            return;
        }
        const auto it = std::find_if(hosts_.begin(), hosts_.end(),
                                     [&](const auto& entry) { return entry.second.resolver == resolver; });
        if (it == hosts_.end()) {
            return;
        }
        const HostKey key = it->first;
        Host& host = it->second;
        if (event == AVAHI_RESOLVER_FAILURE) {
            const int error = client_ != nullptr ? avahi_client_errno(client_) : AVAHI_ERR_DISCONNECTED;
            log(LogLevel::debug, "avahi discovery: resolving host " + key.name + " failed: " + avahi_strerror(error));
            avahi_host_name_resolver_free(resolver);
            host.resolver = nullptr;
            arm(host_timer_, kHostRetryMs);
            return;
        }
        (void)interface;
        (void)protocol;
        (void)name;
        char text[AVAHI_ADDRESS_STR_MAX];
        avahi_address_snprint(text, sizeof text, address);
        if (host.address == text) {
            return;
        }
        host.address = text;
        // Every node on that host may now be reported, or its address changed.
        std::set<std::string> ids;
        for (const auto& [record, seen] : seen_) {
            if (seen.host == key.name && record.interface == key.interface && record.protocol == key.protocol) {
                ids.insert(record.id);
            }
        }
        for (const auto& id : ids) {
            update_peer(id);
        }
    }

    void release_unused_hosts() {
        for (auto it = hosts_.begin(); it != hosts_.end();) {
            const bool used = std::any_of(seen_.begin(), seen_.end(), [&](const auto& entry) {
                return entry.second.host == it->first.name && entry.first.interface == it->first.interface &&
                       entry.first.protocol == it->first.protocol;
            });
            if (used) {
                ++it;
                continue;
            }
            if (it->second.resolver != nullptr) {
                avahi_host_name_resolver_free(it->second.resolver);
            }
            it = hosts_.erase(it);
        }
    }

    // One line per peer and problem, not one per record (bounded against a flood of records).
    void warn_once(const std::string& key, const std::string& message) {
        if (warned_.size() >= 1024) {
            warned_.clear();
        }
        if (warned_.insert(key).second) {
            log(LogLevel::warn, message);
        }
    }

    // The advert a record gives, with its address, or nothing while the host's is not known yet.
    std::optional<Advert> usable(const RecordKey& key, const Seen& seen) const {
        Advert advert = seen.advert;
        if (!seen.host.empty()) {
            const auto host = hosts_.find(HostKey{seen.host, key.interface, key.protocol});
            if (host == hosts_.end() || host->second.address.empty()) {
                return std::nullopt;
            }
            advert.tcp_address = host->second.address;
        }
        return advert;
    }

    // Reports the newest advert of the node (on several interfaces: its longest-known record of
    // that revision), and only when that changes, so a node visible on several interfaces comes up
    // once and goes down with its last record.
    void update_peer(const std::string& id) {
        std::optional<Advert> best;
        std::uint64_t best_order = 0;
        bool any = false;
        for (auto it = seen_.lower_bound(RecordKey{id, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC});
             it != seen_.end() && it->first.id == id; ++it) {
            any = true;
            auto advert = usable(it->first, it->second);
            if (!advert) {
                continue;
            }
            if (!best || advert->revision > best->revision ||
                (advert->revision == best->revision && it->second.order < best_order)) {
                best = std::move(advert);
                best_order = it->second.order;
            }
        }
        const auto reported = peers_.find(id);
        if (!any) {
            if (reported != peers_.end()) {
                peers_.erase(reported);
                if (events_.on_peer_down) {
                    guarded("on_peer_down", [&] { events_.on_peer_down(id); });
                }
            }
            return;
        }
        if (!best || (reported != peers_.end() && reported->second == *best)) {
            return;
        }
        const Advert& now = peers_.insert_or_assign(id, std::move(*best)).first->second;
        if (events_.on_peer_up) {
            guarded("on_peer_up", [&] { events_.on_peer_up(now); });
        }
    }

    // ----- teardown -----

    // Frees everything; only with no poll thread running (before it starts, or after it was joined).
    void release() {
        for (auto& [key, host] : hosts_) {
            if (host.resolver != nullptr) {
                avahi_host_name_resolver_free(host.resolver);
            }
        }
        hosts_.clear();
        seen_.clear();
        peers_.clear();
        if (browser_ != nullptr) {
            avahi_record_browser_free(browser_);
            browser_ = nullptr;
        }
        if (advert_group_ != nullptr) {
            avahi_entry_group_free(advert_group_);
            advert_group_ = nullptr;
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
            if (host_timer_ != nullptr) {
                api_->timeout_free(host_timer_);
            }
        }
        reconnect_timer_ = nullptr;
        reconcile_timer_ = nullptr;
        update_timer_ = nullptr;
        host_timer_ = nullptr;
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
    AvahiEntryGroup* advert_group_ = nullptr;  // this node's advert record
    std::string adverts_name_;                 // _adverts.<type>.local
    AvahiRecordBrowser* browser_ = nullptr;    // every node's advert record
    AvahiTimeout* host_timer_ = nullptr;
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
    std::map<RecordKey, Seen> seen_;
    std::map<HostKey, Host> hosts_;
    std::map<std::string, Advert> peers_;  // what was reported up, by id
};

}  // namespace

std::unique_ptr<Discovery> make_avahi_discovery() {
    return std::make_unique<AvahiDiscovery>();
}

}  // namespace meshy::detail

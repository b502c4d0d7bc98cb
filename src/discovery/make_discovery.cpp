// Backend selection. Automatic mode prefers Avahi (it reaches other hosts) and degrades to the
// same-host backend rather than failing, because a laptop without avahi-daemon is a normal setup.
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "discovery/discovery.hpp"
#include "meshy/error.hpp"
#include "meshy/log.hpp"

namespace meshy::detail {
namespace {

class AutomaticDiscovery final : public Discovery {
public:
    ~AutomaticDiscovery() override { stop(); }

    void start(const Advert& self, DiscoveryEvents events) override {
        std::lock_guard lock(mutex_);
        if (active_ != nullptr) {
            return;
        }
        auto avahi = make_avahi_discovery();
        try {
            avahi->start(self, events);
            active_ = std::move(avahi);
        } catch (const Error& e) {
            if (e.code_value() != errc::discovery_unavailable) {
                throw;
            }
            log(LogLevel::debug, std::string("avahi discovery unavailable: ") + e.what());
            log(LogLevel::info,
                "no avahi-daemon reachable; using same-host discovery (set MESHY_DISCOVERY=avahi to require Avahi)");
            auto local = make_local_discovery();
            local->start(self, std::move(events));
            active_ = std::move(local);
        }
        name_ = active_->backend_name();
    }

    void update(const Advert& self) override {
        std::lock_guard lock(mutex_);
        if (active_ != nullptr) {
            active_->update(self);
        }
    }

    void stop() override {
        std::unique_ptr<Discovery> active;
        {
            std::lock_guard lock(mutex_);
            active = std::move(active_);
        }
        if (active != nullptr) {
            active->stop();
        }
    }

    // Names the backend last started, so `meshy node info` still says which one after stop().
    const char* backend_name() const override {
        std::lock_guard lock(mutex_);
        return name_;
    }

private:
    mutable std::mutex mutex_;
    std::unique_ptr<Discovery> active_;
    const char* name_ = "automatic";  // until start() has picked one
};

// Static peers only: nothing to publish or browse.
class NoDiscovery final : public Discovery {
public:
    void start(const Advert&, DiscoveryEvents) override {}
    void update(const Advert&) override {}
    void stop() override {}
    const char* backend_name() const override { return "static"; }
};

}  // namespace

std::unique_ptr<Discovery> make_no_discovery() {
    return std::make_unique<NoDiscovery>();
}

std::unique_ptr<Discovery> make_discovery(DiscoveryBackend requested) {
    if (const char* forced = std::getenv("MESHY_DISCOVERY"); forced != nullptr && *forced != '\0') {
        const std::string_view value = forced;
        if (value == "avahi") {
            requested = DiscoveryBackend::avahi;
        } else if (value == "local") {
            requested = DiscoveryBackend::local;
        } else if (value == "static") {
            requested = DiscoveryBackend::none;
        } else {
            throw Error(errc::invalid_argument,
                        "MESHY_DISCOVERY='" + std::string(value) + "' (expected 'avahi', 'local' or 'static')");
        }
    }
    switch (requested) {
        case DiscoveryBackend::avahi:
            return make_avahi_discovery();
        case DiscoveryBackend::local:
            return make_local_discovery();
        case DiscoveryBackend::none:
            return make_no_discovery();
        case DiscoveryBackend::automatic:
            break;
    }
    return std::make_unique<AutomaticDiscovery>();
}

}  // namespace meshy::detail

#include "topology/identity.hpp"

namespace meshy::detail {

std::string tcp_remote_address(const std::string& remote) {
    if (remote.rfind("tcp:", 0) != 0) {
        return {};
    }
    const auto colon = remote.rfind(':');
    return colon > 4 ? remote.substr(4, colon - 4) : std::string();
}

bool is_loopback(const std::string& address) {
    return address.rfind("127.", 0) == 0 || address == "::1";
}

std::string identity_mismatch(const Advert& advert, const ConnectionEnd& end, const std::string& self_host) {
    const std::string who = advert.name + " (" + advert.id.substr(0, 8) + ")";
    if (end.is_unix) {
        if (advert.pid != 0 && end.pid != 0 && end.pid != advert.pid) {
            return "claims the id of " + who + ", whose process is " + std::to_string(advert.pid) + ", from process " +
                   std::to_string(end.pid);
        }
        return {};
    }
    const auto from = tcp_remote_address(end.remote);
    if (!advert.tcp_address.empty() && !from.empty() && from != advert.tcp_address &&
        !(is_loopback(from) && advert.host == self_host)) {
        return "claims the id of " + who + ", advertised at " + advert.tcp_address;
    }
    return {};
}

}  // namespace meshy::detail

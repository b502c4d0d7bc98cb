#include "bridge/allowlist.hpp"

#include <fnmatch.h>

namespace meshy::cli::bridge {

bool glob_match(std::string_view pattern, std::string_view name) {
    const std::string p(pattern);
    const std::string n(name);
    if (p.find('\0') != std::string::npos || n.find('\0') != std::string::npos) {
        return false;
    }
    return fnmatch(p.c_str(), n.c_str(), 0) == 0;
}

bool Allowlist::allows(std::string_view name) const {
    if (globs_.empty()) {
        return true;
    }
    // reserve + push_back + append: `full = "/"; full += name;` trips GCC 12's -Wrestrict false
    // positive inside std::string under -O2 with sanitizers.
    std::string full;
    full.reserve(name.size() + 1);
    if (name.empty() || name.front() != '/') {
        full.push_back('/');
    }
    full.append(name);
    for (const auto& g : globs_) {
        if (glob_match(g, full)) {
            return true;
        }
    }
    return false;
}

}  // namespace meshy::cli::bridge

// fnmatch-style allowlists of rosbridge names (`--topics-glob`, `--services-glob`, `--publish-glob`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace meshy::cli::bridge {

/// True when `name` matches the shell-style `pattern` (fnmatch(3): `*`, `?`, `[...]`; `*` also
/// matches `/`).
bool glob_match(std::string_view pattern, std::string_view name);

/// A set of globs. Empty: everything is allowed.
class Allowlist {
public:
    Allowlist() = default;
    explicit Allowlist(std::vector<std::string> globs) : globs_(std::move(globs)) {}
    /// True when no glob is set or one matches. Names are matched with a leading '/'
    /// (`chatter` is matched as `/chatter`).
    bool allows(std::string_view name) const;
    /// True when no glob is set.
    bool allows_everything() const noexcept { return globs_.empty(); }
    const std::vector<std::string>& globs() const noexcept { return globs_; }

private:
    std::vector<std::string> globs_;
};

}  // namespace meshy::cli::bridge

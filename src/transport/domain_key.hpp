// Internal: the domain key, 32 random bytes every node of a keyed domain holds (see
// docs/security.md). Its file is text:
//   meshy-domain-key-v1
//   <the 32 bytes in standard base64, 44 characters>
// Lines starting with '#' and blank lines are ignored. The file must not be readable by group or
// others (mode 0600 or stricter): a node refuses it otherwise.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace meshy::detail {

/// The first line of a key file.
inline constexpr std::string_view domain_key_header = "meshy-domain-key-v1";

struct DomainKey {
    std::array<unsigned char, 32> bytes{};
};

/// A fresh key from the system's random source (libsodium's randombytes_buf).
DomainKey generate_domain_key();
/// The key file's text for `key` (header line, base64 line).
std::string format_domain_key(const DomainKey& key);
/// Parses a key file's text. @throws Error(errc::invalid_argument) saying what is wrong (never
/// quoting the key).
DomainKey parse_domain_key(std::string_view text, const std::string& path);
/// Reads and parses the key file at `path`, refusing a file group or others may read.
/// @throws Error(errc::invalid_argument) with one line naming the file and the problem.
DomainKey load_domain_key(const std::string& path);

}  // namespace meshy::detail

/// @file
/// The domain key: 32 random bytes in a file that every node of a keyed domain is given
/// (NodeOptions::domain_key_file). See docs/security.md.
///
/// @code
/// std::ofstream("lab.key") << meshy::generate_domain_key_text();  // then: chmod 600 lab.key
/// meshy::Node node({.name = "talker", .domain_key_file = "lab.key"});
/// @endcode
#pragma once

#include <string>

namespace meshy {

/// A new domain key from the system's random source, in the key file's text form: the line
/// "meshy-domain-key-v1", then the 32 bytes in base64.
std::string generate_domain_key_text();

/// Checks the key file at `path` as a node loads it: readable, mode 0600 or stricter (not
/// readable by group or others), and a well-formed key.
/// @throws meshy::Error (errc::invalid_argument) with one line naming the file and the problem.
void check_domain_key_file(const std::string& path);

}  // namespace meshy

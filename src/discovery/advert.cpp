// The key=value form of an Advert, shared by both backends so that a TXT record and a local .node
// file carry exactly the same fields, and the checks every advert read from outside passes. Both
// sources are untrusted (any process on the LAN can publish a record, any process of the user can
// write a file): every field is bounded and validated here, and tests/fuzz/advert_fuzz.cpp drives it.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "common/system.hpp"
#include "discovery/discovery.hpp"
#include "meshy/error.hpp"

namespace meshy::detail {

namespace {

template <typename Int>
bool parse_int(std::string_view text, Int& out) {
    if (text.empty()) {
        return false;
    }
    Int value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return false;
    }
    out = value;
    return true;
}

// A wildcard bind address is not something a peer can dial; leaving it out lets the reader fall
// back to the address it actually reached us on.
bool is_wildcard_address(std::string_view address) {
    return address == "0.0.0.0" || address == "::" || address == "[::]";
}

bool is_ip_address(const std::string& text) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, text.c_str(), buf) == 1 || ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// The node id names files and sockets: only the canonical 8-4-4-4-12 hex form is accepted.
bool is_uuid(std::string_view id) {
    if (id.size() != 36) {
        return false;
    }
    for (std::size_t i = 0; i < id.size(); ++i) {
        const char c = id[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return false;
            }
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

// ----- lists: items joined by ',' (publication parts by ';'), '\' escapes -----

constexpr char kItemSeparator = ',';
constexpr char kPartSeparator = ';';
constexpr char kEscape = '\\';

bool needs_escape(char c) {
    return c == kEscape || c == kItemSeparator || c == kPartSeparator;
}

// The list as escaped tokens (1 or 2 bytes each), so that pieces are cut between tokens only.
class ListText {
public:
    void separator(char c) { tokens_.emplace_back(1, c); }
    void text(std::string_view value) {
        for (const char c : value) {
            if (needs_escape(c)) {
                tokens_.push_back(std::string{kEscape, c});
            } else {
                tokens_.emplace_back(1, c);
            }
        }
    }
    bool empty() const { return tokens_.empty(); }

    // Cuts into pieces of at most `max` bytes each (max >= 2).
    std::vector<std::string> pieces(std::size_t max) const {
        std::vector<std::string> out;
        std::string piece;
        for (const auto& token : tokens_) {
            if (piece.size() + token.size() > max) {
                out.push_back(std::move(piece));
                piece.clear();
            }
            piece += token;
        }
        if (!piece.empty()) {
            out.push_back(std::move(piece));
        }
        return out;
    }

private:
    std::vector<std::string> tokens_;
};

// Splits an escaped list into items, each item into parts; false on a dangling escape.
bool split_list(std::string_view text, std::vector<std::vector<std::string>>& items) {
    items.clear();
    if (text.empty()) {
        return true;
    }
    items.emplace_back(1);
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == kEscape) {
            if (++i == text.size()) {
                return false;
            }
            items.back().back() += text[i];
        } else if (c == kItemSeparator) {
            if (items.size() >= kMaxAdvertItems) {
                return false;
            }
            items.emplace_back(1);
        } else if (c == kPartSeparator) {
            items.back().emplace_back();
        } else {
            items.back().back() += c;
        }
    }
    return true;
}

// Every list key is a letter and a piece number: t0, t1, ...
struct ListKey {
    char list = 0;
    std::size_t index = 0;
};

bool parse_list_key(std::string_view key, ListKey& out) {
    if (key.size() < 2 || (key[0] != 't' && key[0] != 's' && key[0] != 'p')) {
        return false;
    }
    if (key.size() > 2 && key[1] == '0') {
        return false;  // one spelling a piece: "t01" is not t1
    }
    out.list = key[0];
    return parse_int(key.substr(1), out.index);
}

std::size_t txt_size(const AdvertFields& fields) {
    std::size_t total = 0;
    for (const auto& [key, value] : fields) {
        total += 1 + key.size() + 1 + value.size();
    }
    return total;
}

void add_list(AdvertFields& fields, char letter, const ListText& list, std::size_t max_string) {
    if (list.empty()) {
        return;
    }
    std::size_t index = 0;
    // The key grows with the piece number; 8 bytes leave room for "t9999999=".
    const std::size_t room = max_string > 10 ? max_string - 10 : 2;
    for (auto& piece : list.pieces(room)) {
        fields.emplace_back(std::string(1, letter) + std::to_string(index++), std::move(piece));
    }
}

template <typename T>
void sort_unique(std::vector<T>& items) {
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
}

bool fail(std::string* reason, std::string text) {
    if (reason != nullptr) {
        *reason = std::move(text);
    }
    return false;
}

// ----- the .node file's line escaping: values are free text, line breaks must not split a record -----

std::string escape_line(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string unescape_line(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '\\' || i + 1 == value.size()) {
            out += value[i];
            continue;
        }
        const char next = value[++i];
        out += next == 'n' ? '\n' : next == 'r' ? '\r' : next;
    }
    return out;
}

}  // namespace

std::string truncate_utf8(std::string text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) {
        return text;
    }
    std::size_t end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0u) == 0x80u) {
        --end;
    }
    text.resize(end);
    return text;
}

AdvertFields advert_to_fields(const Advert& advert, const AdvertLayout& layout) {
    AdvertFields fields;
    auto add = [&](std::string key, std::string value) {
        const std::size_t room = layout.max_string > key.size() + 1 ? layout.max_string - key.size() - 1 : 0;
        if (value.size() > room) {
            // The name is informational and may be cut; the other fields must be exact or the peer
            // would dial a wrong address or judge the wrong domain.
            if (key != "name") {
                throw Error(errc::invalid_argument, "advert field '" + key + "' is too long for a discovery record");
            }
            value = truncate_utf8(std::move(value), room);
        }
        fields.emplace_back(std::move(key), std::move(value));
    };
    add("v", std::to_string(advert.protocol));
    add("id", advert.id);
    add("name", advert.name);
    add("host", advert.host);
    add("domain", advert.domain);
    add("tcp", std::to_string(advert.tcp_port));
    add("unix", advert.unix_path);
    if (!advert.tcp_address.empty() && !is_wildcard_address(advert.tcp_address)) {
        add("addr", advert.tcp_address);
    }
    add("pid", std::to_string(advert.pid));
    add("rev", std::to_string(advert.revision));
    if (!advert.complete) {
        add("c", "0");
        return fields;
    }

    std::vector<std::string> topics = advert.topics;
    std::vector<std::string> services = advert.services;
    std::vector<Publication> publications = advert.publications;
    sort_unique(topics);
    sort_unique(services);
    std::sort(publications.begin(), publications.end(),
              [](const Publication& a, const Publication& b) { return a.topic < b.topic; });
    ListText topic_text;
    ListText service_text;
    ListText publication_text;
    for (const auto& topic : topics) {
        if (!topic_text.empty()) {
            topic_text.separator(kItemSeparator);
        }
        topic_text.text(topic);
    }
    for (const auto& service : services) {
        if (!service_text.empty()) {
            service_text.separator(kItemSeparator);
        }
        service_text.text(service);
    }
    for (const auto& publication : publications) {
        if (!publication_text.empty()) {
            publication_text.separator(kItemSeparator);
        }
        publication_text.text(publication.topic);
        if (!publication.type.empty() || publication.latched) {
            publication_text.separator(kPartSeparator);
            publication_text.text(publication.type);
        }
        if (publication.latched) {
            publication_text.separator(kPartSeparator);
            publication_text.text("l");
        }
    }
    AdvertFields with_lists = fields;
    add_list(with_lists, 't', topic_text, layout.max_string);
    add_list(with_lists, 's', service_text, layout.max_string);
    add_list(with_lists, 'p', publication_text, layout.max_string);
    if (txt_size(with_lists) > layout.budget) {
        fields.emplace_back("c", "0");
        return fields;
    }
    return with_lists;
}

bool advert_from_fields(const AdvertFields& fields, Advert& out, std::string* reason) {
    Advert advert;
    bool have_id = false;
    bool have_version = false;
    // Pieces of each list by number; they must run 0, 1, ... without a gap or a repeat.
    std::map<char, std::map<std::size_t, std::string_view>> pieces;
    std::size_t list_bytes = 0;
    for (const auto& [key, value] : fields) {
        const bool text_field =
            key == "id" || key == "name" || key == "host" || key == "domain" || key == "unix" || key == "addr";
        if (text_field && value.size() > kMaxAdvertText) {
            return fail(reason, "field '" + key + "' is longer than " + std::to_string(kMaxAdvertText) + " bytes");
        }
        // Unknown keys are skipped so that a newer node can add fields without breaking older ones.
        ListKey list_key;
        if (key == "v") {
            if (!parse_int(value, advert.protocol)) {
                return fail(reason, "bad protocol version");
            }
            have_version = true;
        } else if (key == "id") {
            if (!is_uuid(value)) {
                return fail(reason, "id is not a UUID");
            }
            advert.id = value;
            have_id = true;
        } else if (key == "name") {
            advert.name = value;
        } else if (key == "host") {
            advert.host = value;
        } else if (key == "domain") {
            advert.domain = value;
        } else if (key == "tcp") {
            if (!parse_int(value, advert.tcp_port)) {
                return fail(reason, "bad tcp port");
            }
        } else if (key == "unix") {
            if (!value.empty() && (value.front() != '/' || value.find('\0') != std::string::npos)) {
                return fail(reason, "unix is not an absolute path");
            }
            advert.unix_path = value;
        } else if (key == "addr") {
            if (!is_ip_address(value)) {
                return fail(reason, "addr is not an IP address");
            }
            if (!is_wildcard_address(value)) {  // not dialable: the reader uses the address it saw
                advert.tcp_address = value;
            }
        } else if (key == "pid") {
            if (!parse_int(value, advert.pid) || advert.pid < 0) {
                return fail(reason, "bad pid");
            }
        } else if (key == "rev") {
            if (!parse_int(value, advert.revision)) {
                return fail(reason, "bad revision");
            }
        } else if (key == "c") {
            if (value != "0" && value != "1") {
                return fail(reason, "bad c");
            }
            advert.complete = value == "1";
        } else if (parse_list_key(key, list_key)) {
            list_bytes += value.size();
            if (list_bytes > kMaxAdvertBytes || !pieces[list_key.list].emplace(list_key.index, value).second) {
                return fail(reason, "list piece '" + key + "' repeated or lists too long");
            }
        }
    }
    if (!have_id || !have_version) {
        return fail(reason, have_id ? "no protocol version" : "no id");
    }
    for (const auto& [letter, numbered] : pieces) {
        std::string text;
        std::size_t expected = 0;
        for (const auto& [index, piece] : numbered) {
            if (index != expected++) {
                return fail(reason, std::string("list '") + letter + "' has a missing piece");
            }
            text += piece;
        }
        std::vector<std::vector<std::string>> items;
        if (!split_list(text, items)) {
            return fail(reason, std::string("list '") + letter + "' ends inside an escape");
        }
        for (auto& parts : items) {
            if (parts.front().empty() || parts.front().size() > kMaxAdvertItem) {
                return fail(reason, std::string("list '") + letter + "' has an empty or overlong name");
            }
            if (letter != 'p') {
                if (parts.size() != 1) {
                    return fail(reason, std::string("list '") + letter + "' has an item with parts");
                }
                (letter == 't' ? advert.topics : advert.services).push_back(std::move(parts.front()));
                continue;
            }
            if (parts.size() > 3 || (parts.size() == 3 && parts[2] != "l") ||
                (parts.size() > 1 && parts[1].size() > kMaxAdvertItem)) {
                return fail(reason, "malformed publication");
            }
            Publication publication;
            publication.topic = std::move(parts[0]);
            if (parts.size() > 1) {
                publication.type = std::move(parts[1]);
            }
            publication.latched = parts.size() == 3;
            advert.publications.push_back(std::move(publication));
        }
    }
    // An incomplete advert's lists are not to be trusted as the whole truth: none are reported.
    if (!advert.complete) {
        advert.topics.clear();
        advert.services.clear();
        advert.publications.clear();
    }
    sort_unique(advert.topics);
    sort_unique(advert.services);
    std::sort(advert.publications.begin(), advert.publications.end(),
              [](const Publication& a, const Publication& b) { return a.topic < b.topic; });
    advert.publications.erase(
        std::unique(advert.publications.begin(), advert.publications.end(),
                    [](const Publication& a, const Publication& b) { return a.topic == b.topic; }),
        advert.publications.end());
    out = std::move(advert);
    return true;
}

bool txt_rdata_strings(std::string_view rdata, std::vector<std::string_view>& out) {
    out.clear();
    for (std::size_t at = 0; at < rdata.size();) {
        const std::size_t length = static_cast<unsigned char>(rdata[at]);
        if (length > rdata.size() - at - 1) {
            out.clear();
            return false;
        }
        out.push_back(rdata.substr(at + 1, length));
        at += 1 + length;
    }
    return true;
}

AdvertFields txt_strings_to_fields(const std::vector<std::string_view>& strings) {
    AdvertFields fields;
    fields.reserve(strings.size());
    for (const std::string_view text : strings) {
        const auto eq = text.find('=');
        if (eq != std::string_view::npos && eq > 0) {
            fields.emplace_back(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
        }
    }
    return fields;
}

std::string advert_to_file_text(const Advert& advert) {
    std::string text;
    for (const auto& [key, value] : advert_to_fields(advert)) {
        text += key;
        text += '=';
        text += escape_line(value);
        text += '\n';
    }
    return text;
}

bool advert_from_file_text(std::string_view text, Advert& out, std::string* reason) {
    if (text.size() > kMaxAdvertBytes) {
        return fail(reason, "file too large");
    }
    AdvertFields fields;
    while (!text.empty()) {
        const auto eol = text.find('\n');
        const std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        const auto eq = line.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            continue;
        }
        fields.emplace_back(std::string(line.substr(0, eq)), unescape_line(line.substr(eq + 1)));
    }
    return advert_from_fields(fields, out, reason);
}

std::vector<std::string> expected_socket_dirs(const Advert& self) {
    std::vector<std::string> dirs;
    if (const auto slash = self.unix_path.rfind('/'); slash != std::string::npos && slash > 0) {
        dirs.push_back(self.unix_path.substr(0, slash));
    }
    std::string fallback = default_socket_dir();
    if (dirs.empty() || dirs.front() != fallback) {
        dirs.push_back(std::move(fallback));
    }
    return dirs;
}

std::string check_peer_advert(Advert& peer,
                              const Advert& self,
                              const std::vector<std::string>& socket_dirs,
                              std::string& note) {
    note.clear();
    if (peer.protocol != self.protocol) {
        return "it speaks protocol " + std::to_string(peer.protocol) + ", this node speaks " +
               std::to_string(self.protocol) + " (run the same meshy version on both)";
    }
    if (!peer.unix_path.empty()) {
        const std::string file = "/" + peer.id + ".sock";
        const bool expected = std::any_of(socket_dirs.begin(), socket_dirs.end(),
                                          [&](const std::string& dir) { return peer.unix_path == dir + file; });
        if (!expected) {
            note = "its Unix socket " + peer.unix_path + " is not <socket dir>/<id>.sock; not dialing it";
            peer.unix_path.clear();
        }
    }
    return {};
}

}  // namespace meshy::detail

// Fuzz target: discovery adverts, which any host of the LAN (TXT records) or any process of the user
// (.node files) can write. The first byte picks the reader; the rest is either a TXT record's
// rdata (character strings, each a length byte and its bytes, as the Avahi backend's advert records
// arrive) or a .node file's text.
// Whatever parses must encode again and parse back to the same advert.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "discovery/discovery.hpp"

using namespace meshy::detail;

namespace {

void check_round_trip(const Advert& advert) {
    Advert self = advert;
    self.id = "ffffffff-ffff-4fff-8fff-ffffffffffff";
    std::string note;
    Advert peer = advert;
    check_peer_advert(peer, self, expected_socket_dirs(self), note);
    Advert back;
    if (!advert_from_file_text(advert_to_file_text(advert), back) || !(back == advert)) {
        std::abort();  // what a reader accepted must survive the writer
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // expected_socket_dirs() falls back to /tmp/meshy-UID, a getuid() system call in every input
    // that parses; a session's runtime directory is what a node usually sees, and it is a getenv().
    setenv("XDG_RUNTIME_DIR", "/run/user/fuzz", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    Advert advert;
    std::string reason;
    if ((data[0] & 1) == 0) {
        std::vector<std::string_view> strings;
        if (txt_rdata_strings(in, strings) && advert_from_fields(txt_strings_to_fields(strings), advert, &reason)) {
            check_round_trip(advert);
        }
    } else if (advert_from_file_text(in, advert, &reason)) {
        check_round_trip(advert);
    }
    return 0;
}

// Must NOT compile (ctest node_header_needs_msgpack expects the static_assert's message): a typed
// send without a codec argument uses msgpack, and this translation unit did not include its header.
// It is never silently compiled some other way (see meshy/detail/codec_dispatch.hpp).
#include <meshy/node.hpp>

void send_a_number(meshy::Node& node) {
    node.send_blocking("numbers", 42);
}

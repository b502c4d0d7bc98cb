// Listens to the 8 MB frames of loan_camera_sender and reads each one in place, in the sender's
// shared memory (docs/shm.md, "Loans"): the raw listener's payload points into the sender's pool,
// mapped read-only here, and the frame goes back to the sender when the callback returns (a copy of
// `payload_owner` would keep it longer). Ctrl-C stops.
//
//   loan_camera_listener [--name NAME] [--domain-id ID] [--log LEVEL]
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <meshy/meshy.hpp>

#include "example_args.hpp"

int main(int argc, char** argv) {
    auto options = example_options(argc, argv, "loan_camera_listener");
    options.allow_shm = true;
    asio::io_context io;
    meshy::Node node(io.get_executor(), options);
    node.listen_raw("camera", [](const meshy::RawMessage& m) {
        if (m.payload.size() < sizeof(std::uint64_t)) {
            return;
        }
        std::uint64_t frame = 0;
        std::memcpy(&frame, m.payload.data(), sizeof frame);
        // A look at a pixel of the last row, where the sender wrote it: nothing was copied here.
        const auto last = std::to_integer<int>(m.payload.back());
        if (frame % 10 == 0) {
            std::cout << "frame " << frame << ": " << m.payload.size() << " bytes, last pixel " << last
                      << (m.payload_owner ? ", read in place" : ", copied (not a shared-memory link)") << std::endl;
        }
    });
    std::cout << "Listening to camera..." << std::endl;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) {
        node.stop();
        io.stop();
    });
    io.run();
}

// A camera-like sender of 8 MB frames built straight in shared memory (docs/shm.md, "Loans"): each
// frame is a loan from the node's pool, filled in place and sent; listeners on this host linked over
// shared memory read it where it lies (see loan_camera_listener), others get a copy. Ctrl-C stops.
//
//   loan_camera_sender [--name NAME] [--domain-id ID] [--log LEVEL]
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <meshy/meshy.hpp>

#include "example_args.hpp"

namespace {

constexpr std::size_t frame_bytes = 8u << 20;  // a 2048 x 1024 RGBA image
constexpr auto frame_period = std::chrono::milliseconds(100);

// A "picture": the frame number, then rows whose shade moves with it.
void draw(std::span<std::byte> image, std::uint64_t frame) {
    std::memcpy(image.data(), &frame, sizeof frame);
    constexpr std::size_t row = 2048 * 4;
    for (std::size_t at = row; at < image.size(); at += row) {
        std::memset(image.data() + at, static_cast<int>((at / row + frame) & 0xff), row);
    }
}

}  // namespace

int main(int argc, char** argv) {
    auto options = example_options(argc, argv, "loan_camera_sender");
    options.allow_shm = true;  // loans reach listeners in place over shared memory links only
    asio::io_context io;
    meshy::Node node(io.get_executor(), options);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer tick(io);
            for (std::uint64_t frame = 0; node.running(); ++frame) {
                try {
                    // A block of the pool, written in place: no copy on the way to a listener on
                    // this host. With the default OutboxFull::drop_oldest, a pool whose blocks are
                    // all held by listeners refuses the loan (with OutboxFull::wait it waits).
                    auto loan = co_await node.loan("camera", frame_bytes);
                    draw(loan.bytes(), frame);
                    co_await node.send_loaned(std::move(loan));
                    if (frame % 10 == 0) {
                        std::cout << "sent frame " << frame << " (" << frame_bytes << " bytes)" << std::endl;
                    }
                } catch (const meshy::Error& e) {
                    if (e.code_value() != meshy::errc::pool_exhausted) {
                        throw;
                    }
                    std::cout << "frame " << frame << " skipped: listeners hold every block" << std::endl;
                }
                tick.expires_after(frame_period);
                co_await tick.async_wait(asio::use_awaitable);
            }
        },
        [](std::exception_ptr e) {
            try {
                if (e) {
                    std::rethrow_exception(e);
                }
            } catch (const meshy::Error& error) {
                if (error.code_value() != meshy::errc::not_running) {
                    std::cerr << "error: " << error.what() << std::endl;
                }
            }
        });
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) {
        node.stop();
        io.stop();
    });
    io.run();
}

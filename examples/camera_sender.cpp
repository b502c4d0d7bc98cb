// Publishes generated JPEG test images to a topic at a fixed rate, like a camera driver would (no
// camera needed): a moving gradient with a frame counter bar. View it with `meshy bridge` at
// http://127.0.0.1:9090/stream/camera or in the dashboard's image view.
//
//   camera_sender [--topic camera] [--fps 10] [--width 320] [--height 240] [--count 0]
//                 [--shape bin|image|raw] [--noise] [--name NAME] [--domain-id ID] [--log LEVEL]
//
// --shape: bin (default) sends a msgpack bin argument; image the foxglove.CompressedImage shape
// {timestamp, frame_id, data, format: "jpeg"}; raw the bare JPEG under the raw codec. --noise adds
// grain, for frames as large as a real camera's.
// jpeglib.h declares functions on FILE without including <stdio.h> itself.
#include <stdio.h>
// (keep this order)
#include <jpeglib.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <meshy/codecs/msgpack.hpp>
#include <meshy/meshy.hpp>
#include <string>
#include <vector>

#include "example_args.hpp"

namespace {

struct CameraOptions {
    std::string topic = "camera";
    double fps = 10;
    int width = 320;
    int height = 240;
    long count = 0;  // 0: until interrupted
    std::string shape = "bin";
    bool noise = false;  // grain that JPEG compresses badly: large frames, as a real camera's
};

// One test picture: a diagonal gradient that moves with the frame number, and a bar as wide as the
// frame number modulo the width, so consecutive frames differ visibly.
std::vector<unsigned char> encode_frame(const CameraOptions& o, long frame) {
    std::vector<unsigned char> rgb(static_cast<std::size_t>(o.width) * o.height * 3);
    std::uint64_t seed = 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(frame);
    for (int y = 0; y < o.height; ++y) {
        for (int x = 0; x < o.width; ++x) {
            unsigned char* p = &rgb[(static_cast<std::size_t>(y) * o.width + x) * 3];
            p[0] = static_cast<unsigned char>((x + frame * 4) & 0xFF);
            p[1] = static_cast<unsigned char>((y + frame * 2) & 0xFF);
            p[2] = static_cast<unsigned char>(((x + y) / 2) & 0xFF);
            if (o.noise) {
                // xorshift: cheap, and the same for every run
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                p[0] = static_cast<unsigned char>(p[0] ^ (seed & 0x3F));
                p[1] = static_cast<unsigned char>(p[1] ^ ((seed >> 8) & 0x3F));
                p[2] = static_cast<unsigned char>(p[2] ^ ((seed >> 16) & 0x3F));
            }
            if (y > o.height - 16 && x < (frame * 8) % o.width) {
                p[0] = p[1] = p[2] = 255;
            }
        }
    }
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr jerr{};
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    unsigned char* out = nullptr;
    unsigned long out_size = 0;
    jpeg_mem_dest(&cinfo, &out, &out_size);
    cinfo.image_width = static_cast<JDIMENSION>(o.width);
    cinfo.image_height = static_cast<JDIMENSION>(o.height);
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 80, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = &rgb[static_cast<std::size_t>(cinfo.next_scanline) * o.width * 3];
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    std::vector<unsigned char> jpeg(out, out + out_size);
    jpeg_destroy_compress(&cinfo);
    std::free(out);
    return jpeg;
}

meshy::Buffer to_payload(const CameraOptions& o, const std::vector<unsigned char>& jpeg, long frame) {
    meshy::Buffer out;
    if (o.shape == "raw") {
        out.append(jpeg.data(), jpeg.size());
        return out;
    }
    msgpack::packer<meshy::Buffer> pk(out);
    pk.pack_array(1);
    if (o.shape == "image") {
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        const auto sec = std::chrono::duration_cast<std::chrono::seconds>(now);
        pk.pack_map(4);
        pk.pack("timestamp");
        pk.pack_map(2);
        pk.pack("sec");
        pk.pack(static_cast<std::int64_t>(sec.count()));
        pk.pack("nsec");
        pk.pack(static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sec).count()));
        pk.pack("frame_id");
        pk.pack("camera_" + std::to_string(frame));
        pk.pack("format");
        pk.pack("jpeg");
        pk.pack("data");
    }
    pk.pack_bin(static_cast<std::uint32_t>(jpeg.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(jpeg.data()), static_cast<std::uint32_t>(jpeg.size()));
    return out;
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    std::exit(2);
}

// Takes this example's own flags out of argv; the rest goes to example_options().
CameraOptions parse(int& argc, char** argv) {
    CameraOptions o;
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage_error(arg + " needs a value");
            }
            return argv[++i];
        };
        auto number = [&](double lo, double hi) {
            const std::string text = value();
            char* end = nullptr;
            const double v = std::strtod(text.c_str(), &end);
            if (text.empty() || *end != '\0' || v < lo || v > hi) {
                usage_error(arg + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi));
            }
            return v;
        };
        if (arg == "--topic") {
            o.topic = value();
        } else if (arg == "--fps") {
            o.fps = number(0.1, 1000);
        } else if (arg == "--width") {
            o.width = static_cast<int>(number(16, 8192));
        } else if (arg == "--height") {
            o.height = static_cast<int>(number(16, 8192));
        } else if (arg == "--count") {
            o.count = static_cast<long>(number(0, 1e12));
        } else if (arg == "--noise") {
            o.noise = true;
        } else if (arg == "--shape") {
            o.shape = value();
            if (o.shape != "bin" && o.shape != "image" && o.shape != "raw") {
                usage_error("--shape must be bin, image or raw");
            }
        } else if (arg == "-h" || arg == "--help") {
            std::printf(
                "usage: %s [--topic T] [--fps N] [--width W] [--height H] [--count N] [--shape bin|image|raw] "
                "[--noise]\n"
                "          [--name NAME] [--domain-id ID] [--listen-host ADDRESS] [--log LEVEL]\n",
                argv[0]);
            std::exit(0);
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const CameraOptions o = parse(argc, argv);
    asio::io_context io;
    meshy::Node node(io.get_executor(), example_options(argc, argv, "camera_sender"));
    // Ctrl-C (or SIGTERM) stops the camera cleanly, as a driver would.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec) {
            node.stop();
            io.stop();
        }
    });
    auto done = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(io);
            const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::duration<double>(1 / o.fps));
            auto next = std::chrono::steady_clock::now();
            std::cout << "Sending " << o.width << "x" << o.height << " JPEG frames on topic=" << o.topic << " at "
                      << o.fps << " fps" << std::endl;
            for (long frame = 0; o.count == 0 || frame < o.count; ++frame) {
                const meshy::Buffer payload = to_payload(o, encode_frame(o, frame), frame);
                node.send_raw(o.topic, o.shape == "raw" ? meshy::CodecId::raw : meshy::CodecId::msgpack,
                              payload.bytes());
                // A slow machine drops the rate instead of sending a burst to catch up.
                next = std::max(next + period, std::chrono::steady_clock::now());
                timer.expires_at(next);
                co_await timer.async_wait(asio::use_awaitable);
            }
            signals.cancel();
            node.stop();
        },
        asio::use_future);
    io.run();
    if (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        return 0;  // interrupted
    }
    try {
        done.get();
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }
}

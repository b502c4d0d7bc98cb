// <meshy/node.hpp> alone: this translation unit (built without the unit tests' precompiled header)
// includes no codec header, so it must parse neither msgpack nor cereal, and still do everything
// that needs no codec: raw topics and services, and typed operations that name RawCodec.
#include <meshy/node.hpp>

#if defined(MSGPACK_VERSION_HPP) || defined(MSGPACK_OBJECT_HPP) || defined(MSGPACK_DEFINE)
#    error "meshy/node.hpp parsed <msgpack.hpp>: codecs are opt-in (meshy/codecs/msgpack.hpp)"
#endif
#if defined(CEREAL_CEREAL_HPP_)
#    error "meshy/node.hpp parsed cereal: codecs are opt-in (meshy/codecs/cereal.hpp)"
#endif

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>

using namespace std::chrono_literals;

namespace {

// A complete type there, declared only here: the codec's header was not included.
template <class C>
concept defined = requires {
    sizeof(C);
};
static_assert(!defined<meshy::MsgpackCodec> && !defined<meshy::CerealCodec> && defined<meshy::RawCodec>);

class NodeHeaderAlone : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("meshy-header-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        ::setenv("MESHY_LOCAL_DISCOVERY_DIR", dir_.c_str(), 1);
        ::setenv("MESHY_DISCOVERY", "local", 1);
    }
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    meshy::NodeOptions options(std::string name) {
        return {.name = std::move(name),
                .domain_id = "header-alone-" + std::to_string(::getpid()),
                .listen_host = "127.0.0.1",
                .unix_socket_dir = dir_.string()};
    }
    std::filesystem::path dir_;
};

}  // namespace

TEST_F(NodeHeaderAlone, RawTopicsAndServicesNeedNoCodecHeader) {
    meshy::Node sut(options("header-alone"));
    std::promise<std::string> received;
    std::atomic<bool> first{true};
    sut.listen_raw("blob", [&](const meshy::RawMessage& m) {
        if (first.exchange(false)) {
            received.set_value(std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()));
        }
    });
    sut.add_service_raw("echo", [](const meshy::RawMessage& m) {
        meshy::RawPayload reply;
        reply.codec = m.codec;
        reply.bytes.append(m.payload.data(), m.payload.size());
        return reply;
    });
    sut.wait_for_listener_blocking("blob", 5s);
    const std::string bytes = "\x01\x02 raw";
    sut.send_raw("blob", meshy::CodecId::raw, std::as_bytes(std::span(bytes.data(), bytes.size())));
    auto message = received.get_future();
    ASSERT_EQ(message.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(message.get(), bytes);

    sut.wait_for_service_provider_blocking("echo", 5s);
    meshy::Buffer request;
    request.append(bytes.data(), bytes.size());
    const meshy::RawPayload reply =
        sut.call_raw_blocking("echo", meshy::CodecId::raw, std::move(request), meshy::CallOptions{.timeout = 5s});
    EXPECT_EQ(reply.codec, meshy::CodecId::raw);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(reply.bytes.data()), reply.bytes.size()), bytes);
}

TEST_F(NodeHeaderAlone, TypedOperationsNamingRawNeedNoOtherHeader) {
    meshy::Node sut(options("header-alone-raw"));
    std::promise<std::string> received;
    std::atomic<bool> first{true};
    sut.listen_blocking<meshy::RawCodec>("text", [&](const std::string& text) {
        if (first.exchange(false)) {
            received.set_value(text);
        }
    });
    sut.add_service_blocking<meshy::RawCodec>("upper", [](const std::string& text) {
        std::string out = text;
        for (char& c : out) {
            c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        }
        return out;
    });
    sut.wait_for_listener_blocking("text", 5s);
    sut.send_blocking<meshy::RawCodec>("text", std::string("hello"));
    auto message = received.get_future();
    ASSERT_EQ(message.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(message.get(), "hello");
    sut.wait_for_service_provider_blocking("upper", 5s);
    EXPECT_EQ((sut.call_blocking<std::string, meshy::RawCodec>(meshy::CallOptions{.timeout = 5s}, "upper",
                                                               std::string("abc"))),
              "ABC");
}

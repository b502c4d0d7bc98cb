#include "bridge/websocket_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "bridge/base64.hpp"
#include "bridge/http_request.hpp"
#include "bridge/websocket_frame.hpp"
#include "bridge/websocket_handshake.hpp"

namespace meshy::cli::bridge {
namespace {

using Clock = std::chrono::steady_clock;

int connect_to(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
        throw std::runtime_error("cannot resolve " + host);
    }
    int fd = -1;
    for (addrinfo* a = res; a; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        ::close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        throw std::runtime_error("cannot connect to " + host + ":" + std::to_string(port) + ": " +
                                 std::strerror(errno));
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/// Reads what is available within `timeout` into `buf`. @returns false on EOF/error or timeout
/// (`timed_out` tells which).
bool read_some(int fd, std::string& buf, std::chrono::milliseconds timeout, bool& timed_out) {
    timed_out = false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r == 0) {
        timed_out = true;
        return false;
    }
    if (r < 0) {
        return false;
    }
    char chunk[65536];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
        return false;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
}

}  // namespace

WebSocketClient::WebSocketClient(const std::string& host,
                                 std::uint16_t port,
                                 const std::string& target,
                                 const std::string& extra_headers,
                                 std::chrono::milliseconds timeout) {
    fd_ = connect_to(host, port);
    mask_seed_ ^= static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(this)) ^
                  static_cast<std::uint32_t>(Clock::now().time_since_epoch().count());
    std::string key_bytes(16, '\0');
    for (std::size_t i = 0; i < key_bytes.size(); ++i) {
        mask_seed_ = mask_seed_ * 1664525u + 1013904223u;
        key_bytes[i] = static_cast<char>(mask_seed_ >> 24);
    }
    const std::string key = base64_encode(key_bytes);
    std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                          "\r\nSec-WebSocket-Version: 13\r\n" + extra_headers + "\r\n";
    if (!write_all(request)) {
        ::close(fd_);
        throw std::runtime_error("cannot send the upgrade request");
    }
    const auto deadline = Clock::now() + timeout;
    std::size_t end = std::string::npos;
    while ((end = inbuf_.find("\r\n\r\n")) == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        bool timed_out = false;
        if (left.count() <= 0 || !read_some(fd_, inbuf_, left, timed_out)) {
            const std::string got = inbuf_.substr(0, inbuf_.find("\r\n"));
            ::close(fd_);
            throw std::runtime_error(got.empty() ? "no upgrade response" : got);
        }
    }
    const std::string status = inbuf_.substr(0, inbuf_.find("\r\n"));
    const std::string head = inbuf_.substr(0, end + 4);
    inbuf_.erase(0, end + 4);
    if (status.rfind("HTTP/1.1 101", 0) != 0 || head.find(websocket_accept_key(key)) == std::string::npos) {
        ::close(fd_);
        throw std::runtime_error(status);
    }
}

WebSocketClient::~WebSocketClient() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

bool WebSocketClient::write_all(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

void WebSocketClient::send_text(std::string_view text) {
    mask_seed_ = mask_seed_ * 1664525u + 1013904223u;
    write_all(encode_frame(Opcode::text, text, true, mask_seed_));
}

void WebSocketClient::send_binary(std::string_view data) {
    mask_seed_ = mask_seed_ * 1664525u + 1013904223u;
    write_all(encode_frame(Opcode::binary, data, true, mask_seed_));
}

bool WebSocketClient::send_raw(std::string_view bytes) {
    return write_all(bytes);
}

void WebSocketClient::send_close(std::uint16_t code, std::string_view reason) {
    mask_seed_ = mask_seed_ * 1664525u + 1013904223u;
    write_all(encode_frame(Opcode::close, close_payload(code, reason), true, mask_seed_));
}

ClientMessage WebSocketClient::receive(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string message;
    bool in_message = false;
    bool binary = false;
    for (;;) {
        FrameParse p = parse_frame(inbuf_, UINT64_MAX >> 1, false);
        if (p.status == FrameParse::Status::error) {
            return {ClientMessage::Kind::closed, "bad frame from server: " + p.error, 0};
        }
        if (p.status == FrameParse::Status::complete) {
            inbuf_.erase(0, p.consumed);
            Frame& f = p.frame;
            switch (f.opcode) {
                case Opcode::ping:
                    mask_seed_ = mask_seed_ * 1664525u + 1013904223u;
                    write_all(encode_frame(Opcode::pong, f.payload, true, mask_seed_));
                    continue;
                case Opcode::pong:
                    continue;
                case Opcode::close: {
                    ClientMessage m{ClientMessage::Kind::close, {}, 1005};
                    if (f.payload.size() >= 2) {
                        m.code = static_cast<std::uint16_t>(static_cast<std::uint8_t>(f.payload[0]) << 8 |
                                                            static_cast<std::uint8_t>(f.payload[1]));
                        m.data = f.payload.substr(2);
                    }
                    return m;
                }
                case Opcode::text:
                case Opcode::binary:
                    in_message = true;
                    binary = f.opcode == Opcode::binary;
                    message = std::move(f.payload);
                    break;
                case Opcode::continuation:
                    message += f.payload;
                    break;
            }
            if (in_message && f.fin) {
                return {binary ? ClientMessage::Kind::binary : ClientMessage::Kind::text, std::move(message), 0};
            }
            continue;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        bool timed_out = false;
        if (left.count() <= 0) {
            return {ClientMessage::Kind::timeout, {}, 0};
        }
        if (!read_some(fd_, inbuf_, left, timed_out)) {
            return {timed_out ? ClientMessage::Kind::timeout : ClientMessage::Kind::closed, {}, 0};
        }
    }
}

std::string WebSocketClient::http_request(const std::string& host,
                                          std::uint16_t port,
                                          const std::string& request,
                                          std::chrono::milliseconds timeout) {
    const int fd = connect_to(host, port);
    std::string_view rest = request;
    while (!rest.empty()) {
        const ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            break;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    std::string out;
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        bool timed_out = false;
        if (left.count() <= 0 || !read_some(fd, out, left, timed_out)) {
            break;
        }
    }
    ::close(fd);
    return out;
}

}  // namespace meshy::cli::bridge

// bench/same_host_compare, raw Unix sockets: the floor a shared-memory transport is measured
// against (issue 21's "raw Unix batched bandwidth"). The sender fills its own buffer and writes it
// whole to a Unix stream socket (one write of the message: the largest batch there is); the
// receiver reads it whole into a buffer of its own (MSG_WAITALL) and reads it there. Both sockets
// get meshy's default buffer size, as bench/peer_compare's raw peer does (its best here).
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <meshy/node_options.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "one_way.hpp"

namespace same_host {
namespace {

void tune(int fd) {
    const int size = static_cast<int>(meshy::NodeOptions{}.socket_buffer_size);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

/// The sender's own buffer, written whole to the socket.
class RawUnixSource {
public:
    RawUnixSource(int fd, std::size_t size) : fd_(fd), buffer_(size) {}
    std::uint8_t* acquire() { return buffer_.data(); }
    bool publish(std::uint8_t*) {
        std::size_t sent = 0;
        while (sent < buffer_.size()) {
            const auto n = ::send(fd_, buffer_.data() + sent, buffer_.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                std::fprintf(stderr, "same_host_compare: raw unix send: %s\n", std::strerror(errno));
                return false;
            }
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }
    std::string link() const { return "unix"; }

private:
    int fd_;
    std::vector<std::uint8_t> buffer_;
};

}  // namespace

std::unique_ptr<OneWaySession> raw_unix_session(std::size_t size) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        die(std::string("socketpair: ") + std::strerror(errno));
    }
    tune(fds[0]);
    tune(fds[1]);
    const int receiving = fds[0], sending = fds[1];
    auto receive = [receiving, sending, size](Pipe& acks, Pipe& ready, Pipe& done) {
        ::close(sending);
        Receiver receiver(acks);
        std::thread reader([&] {
            std::vector<std::uint8_t> buffer(size);
            for (;;) {
                const auto n = ::recv(receiving, buffer.data(), buffer.size(), MSG_WAITALL);
                if (n < 0 && errno == EINTR) {
                    continue;  // interrupted before any byte came
                }
                if (n != static_cast<ssize_t>(buffer.size())) {
                    return;  // closed (or shut down by the child's main thread)
                }
                receiver.on_message(buffer.data(), buffer.size());
            }
        });
        ready.put('k');
        char stop = 0;
        done.get(stop, serve_limit);
        ::shutdown(receiving, SHUT_RDWR);
        reader.join();
        ::close(receiving);
    };
    auto send = [receiving, sending, size](Pipe& commands, Pipe& replies, Pipe& acks, Pipe& ready) {
        ::close(receiving);
        ready.put('k');
        RawUnixSource source(sending, size);
        sender_loop(source, size, commands, replies, acks);
        ::close(sending);
    };
    auto session = std::make_unique<OneWaySession>("raw unix", receive, send, false);
    ::close(receiving);  // the children have their copies
    ::close(sending);
    return session;
}

}  // namespace same_host

#include "node/node_servers.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>

#include "common/system.hpp"
#include "meshy/error.hpp"

namespace meshy::detail {
namespace {

std::uint16_t port_of(const asio::generic::stream_protocol::endpoint& ep) {
    const auto* sa = reinterpret_cast<const sockaddr*>(ep.data());
    if (sa->sa_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    }
    return 0;
}

}  // namespace

NodeServers::NodeServers(asio::any_io_executor accept_executor, asio::any_io_executor socket_executor)
    : accept_executor_(std::move(accept_executor)), socket_executor_(std::move(socket_executor)) {
}

NodeServers::~NodeServers() {
    close();
}

void NodeServers::open(const NodeOptions& options, const std::string& node_id, Adopt adopt) {
    try {
        if (options.allow_unix) {
            auto path = socket_dir(options.unix_socket_dir) + "/" + node_id + ".sock";
            if (path.size() >= sizeof(sockaddr_un::sun_path)) {
                throw Error(errc::invalid_argument, "Unix socket path too long: " + path);
            }
            unix_path_ = std::move(path);
            ::unlink(unix_path_.c_str());  // left by a process with this id that did not stop
            asio::generic::stream_protocol::endpoint ep{asio::local::stream_protocol::endpoint(unix_path_)};
            std::error_code ec;
            unix_acceptor_ = make_acceptor("unix:" + unix_path_, true, adopt);
            unix_acceptor_->listen(ep, false, ec);
            if (ec) {
                throw Error(errc::io_error, "cannot listen on Unix socket " + unix_path_ + ": " + ec.message());
            }
            unix_acceptor_->start();
        }
        if (options.allow_tcp) {
            std::error_code ec;
            const auto address = asio::ip::make_address(options.listen_host, ec);
            if (ec) {
                throw Error(errc::invalid_argument, "listen_host '" + options.listen_host + "' is not an IP address");
            }
            asio::generic::stream_protocol::endpoint ep{asio::ip::tcp::endpoint(address, options.listen_port)};
            tcp_acceptor_ = make_acceptor("tcp:" + options.listen_host, false, adopt);
            tcp_acceptor_->listen(ep, true, ec);
            if (ec) {
                throw Error(errc::io_error, "cannot listen on TCP " + options.listen_host + ":" +
                                                std::to_string(options.listen_port) + ": " + ec.message());
            }
            tcp_port_ = port_of(tcp_acceptor_->local_endpoint());
            tcp_acceptor_->start();
        }
    } catch (...) {
        close();
        throw;
    }
}

void NodeServers::close() {
    if (closed_.exchange(true)) {
        return;
    }
    if (tcp_acceptor_) {
        tcp_acceptor_->close();
    }
    if (unix_acceptor_) {
        unix_acceptor_->close();
    }
    if (!unix_path_.empty()) {
        ::unlink(unix_path_.c_str());
    }
}

std::shared_ptr<Acceptor> NodeServers::make_acceptor(std::string label, bool is_unix, const Adopt& adopt) {
    return std::make_shared<Acceptor>(accept_executor_, socket_executor_, std::move(label), AcceptorOptions{},
                                      [adopt, is_unix](Connection::Socket socket) -> std::shared_ptr<Connection> {
                                          return adopt(std::move(socket), is_unix);
                                      });
}

}  // namespace meshy::detail

// Internal: where a node accepts connections: a Unix socket named for the node's id in the socket
// directory, and a TCP port (the one asked for, or one the system picks). Each has its Acceptor;
// what becomes of an accepted socket is the node's business (its Adopt function).
#pragma once

#include <asio/any_io_executor.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "meshy/node_options.hpp"
#include "transport/acceptor.hpp"
#include "transport/connection.hpp"

namespace meshy::detail {

class NodeServers {
public:
    /// Makes a connection of a socket accepted on the Unix socket (`is_unix`) or the TCP port.
    using Adopt = std::function<std::shared_ptr<Connection>(Connection::Socket socket, bool is_unix)>;

    /// @param accept_executor runs the accept loops; @param socket_executor the accepted sockets' one.
    NodeServers(asio::any_io_executor accept_executor, asio::any_io_executor socket_executor);
    ~NodeServers();
    NodeServers(const NodeServers&) = delete;
    NodeServers& operator=(const NodeServers&) = delete;

    /// Listens where `options` allow (allow_unix, allow_tcp) and starts accepting.
    /// @throws Error(errc::invalid_argument) for a Unix path too long or a listen_host that is not
    /// an IP address; Error(errc::io_error) when a socket cannot listen. Nothing is left open then.
    void open(const NodeOptions& options, const std::string& node_id, Adopt adopt);
    /// Stops accepting and removes the Unix socket's path; later calls do nothing (thread-safe).
    void close();

    /// The Unix socket's path (kept after close()); empty without one.
    const std::string& unix_path() const noexcept { return unix_path_; }
    /// The TCP port listened on; 0 without one.
    std::uint16_t tcp_port() const noexcept { return tcp_port_; }

private:
    std::shared_ptr<Acceptor> make_acceptor(std::string label, bool is_unix, const Adopt& adopt);

    asio::any_io_executor accept_executor_;
    asio::any_io_executor socket_executor_;
    std::shared_ptr<Acceptor> unix_acceptor_;
    std::shared_ptr<Acceptor> tcp_acceptor_;
    std::string unix_path_;
    std::uint16_t tcp_port_ = 0;
    std::atomic<bool> closed_{false};
};

}  // namespace meshy::detail

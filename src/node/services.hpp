// Internal: the services a node provides, and the requests that reach them.
#pragma once

#include <asio/any_io_executor.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "meshy/node.hpp"
#include "transport/connection.hpp"

namespace meshy::detail {

/// What a service handler's exception says, for its caller (call it in a catch block).
std::string current_failure();

/// The node's service handlers. Its own lock; handlers never run under it.
class Services {
public:
    /// @param node_name for the error text of a request to a service not provided
    Services(asio::any_io_executor executor, std::string node_name);

    /// Adds or replaces a handler. @returns true when the service is new.
    bool add(std::string service, ServiceFn fn);
    /// @returns false when not provided.
    bool remove(std::string_view service);
    /// Drops every handler.
    void clear();
    /// The provided services, sorted.
    std::vector<std::string> names() const;
    bool contains(std::string_view service) const;
    /// The handler of `service`, or null.
    std::shared_ptr<ServiceFn> find(std::string_view service) const;

    /// A request frame's body read by `conn`: runs its handler (a plain one right here, on the
    /// reader, with the request where it was read; a coroutine spawned), and answers on `conn`.
    /// @returns false for a malformed body.
    bool on_request(const std::shared_ptr<Connection>& conn, std::span<const std::byte> body);

private:
    static void send_reply(Connection& conn, std::uint64_t call_id, const RawPayload& result);
    static void send_failure(Connection& conn, std::uint64_t call_id, const std::string& what);

    asio::any_io_executor exec_;
    std::string node_name_;
    mutable std::mutex mutex_;  // guards the members below
    std::map<std::string, std::shared_ptr<ServiceFn>, std::less<>> services_;
    // The service the last request named: a string compare while the services are unchanged.
    std::string last_service_;
    std::shared_ptr<ServiceFn> last_fn_;
};

}  // namespace meshy::detail

// What the unit tests of the node's parts share: links that never dial, and a call waiter that
// records how its call ended.
#pragma once

#include <asio/io_context.hpp>
#include <optional>
#include <string>

#include "node/calls.hpp"
#include "node/peer_links.hpp"

namespace meshy::detail {

/// Links with no way to connect: what is sent or called waits in them (they have no advert).
struct IdleLinks : PeerLinks {
    IdleLinks(asio::io_context& io, const NodeOptions& options)
        : PeerLinks(
              io.get_executor(),
              options,
              "host",
              [](Connection::Socket, bool, std::string) { return nullptr; },
              [](const std::string&, const std::string&) {},
              nullptr) {}
};

/// Records its call's outcome in `*out`.
struct RecordingWaiter final : CallWaiter {
    std::optional<CallOutcome>* out;
    explicit RecordingWaiter(std::optional<CallOutcome>* o) : out(o) {}
    void complete(CallOutcome outcome, bool) override { *out = std::move(outcome); }
};

}  // namespace meshy::detail

#include "meshy/error.hpp"

namespace meshy {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "meshy"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::no_provider:
                return "no provider for service";
            case errc::timeout:
                return "timed out";
            case errc::connection_lost:
                return "connection lost";
            case errc::remote_error:
                return "remote error";
            case errc::codec_mismatch:
                return "codec cannot decode these types";
            case errc::decode_error:
                return "payload could not be decoded";
            case errc::protocol_error:
                return "protocol error";
            case errc::frame_too_large:
                return "frame larger than the maximum";
            case errc::domain_mismatch:
                return "peer is in another domain";
            case errc::version_mismatch:
                return "peer speaks another protocol version";
            case errc::invalid_argument:
                return "invalid argument";
            case errc::not_running:
                return "node is not running";
            case errc::would_deadlock:
                return "blocking call from the node's own event-loop thread";
            case errc::discovery_unavailable:
                return "discovery backend unavailable";
            case errc::io_error:
                return "I/O error";
            case errc::pool_exhausted:
                return "no room in the loan pool";
            case errc::loan_spent:
                return "the loan was sent already (or moved from)";
        }
        return "unknown meshy error";
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace meshy

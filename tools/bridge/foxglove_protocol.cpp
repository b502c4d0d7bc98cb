#include "bridge/foxglove_protocol.hpp"

#include <limits>
#include <nlohmann/json.hpp>

#include "bridge/utf8.hpp"

namespace meshy::cli::bridge {
namespace {

using json = nlohmann::json;

constexpr std::size_t max_items = 10000;  // subscriptions or channels in one op

/// Sets `error` (why a message breaks the protocol) and returns false. Invalid messages are not
/// exceptional here: any client, or a fuzzer, sends them.
bool invalid(std::string& error, std::string why) {
    error = std::move(why);
    return false;
}

bool u32_field(const json& o, const char* name, std::uint32_t& out, std::string& error) {
    const auto it = o.find(name);
    if (it == o.end() || !it->is_number_integer() || *it < 0 ||
        *it > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max())) {
        return invalid(error, std::string("\"") + name + "\" must be an integer in 0..2^32-1");
    }
    out = it->get<std::uint32_t>();
    return true;
}

bool string_field(const json& o, const char* name, bool required, std::string& out, std::string& error) {
    const auto it = o.find(name);
    if (it == o.end() || it->is_null()) {
        if (required) {
            return invalid(error, std::string("missing \"") + name + "\"");
        }
        out.clear();
        return true;
    }
    if (!it->is_string()) {
        return invalid(error, std::string("\"") + name + "\" must be a string");
    }
    out = it->get<std::string>();
    return true;
}

/// The array `name` of `o`, or nullptr (and `error` set).
const json* array_field(const json& o, const char* name, std::string& error) {
    const auto it = o.find(name);
    if (it == o.end() || !it->is_array()) {
        invalid(error, std::string("\"") + name + "\" must be an array");
        return nullptr;
    }
    if (it->size() > max_items) {
        invalid(error, std::string("\"") + name + "\" has too many items");
        return nullptr;
    }
    return &*it;
}

std::uint32_t read_u32(std::string_view data, std::size_t offset) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(data[offset + static_cast<std::size_t>(i)]);
    }
    return v;
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out += static_cast<char>((v >> (8 * i)) & 0xFF);
    }
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out += static_cast<char>((v >> (8 * i)) & 0xFF);
    }
}

bool parse_binary(std::string_view m, FoxgloveClientOp& op, std::string& error) {
    if (m.empty()) {
        return invalid(error, "empty binary message");
    }
    const auto opcode = static_cast<unsigned char>(m[0]);
    op.op = "opcode " + std::to_string(opcode);
    if (opcode == 1) {
        if (m.size() < 5) {
            return invalid(error, "message data shorter than its header (5 bytes)");
        }
        op.kind = FoxgloveOpKind::message_data;
        op.channel_id = read_u32(m, 1);
        op.data.assign(m.substr(5));
        return true;
    }
    if (opcode == 2) {
        if (m.size() < 13) {
            return invalid(error, "service call request shorter than its header (13 bytes)");
        }
        op.kind = FoxgloveOpKind::service_call;
        op.service_id = read_u32(m, 1);
        op.call_id = read_u32(m, 5);
        const std::uint32_t length = read_u32(m, 9);
        if (length > m.size() - 13) {
            return invalid(error, "service call request: encoding length beyond the message");
        }
        op.encoding.assign(m.substr(13, length));
        op.data.assign(m.substr(13 + length));
        return true;
    }
    return invalid(error, "unknown binary opcode " + std::to_string(opcode));
}

bool parse_text(std::string_view m, FoxgloveClientOp& op, std::string& error) {
    if (!valid_utf8(m)) {
        return invalid(error, "text message is not UTF-8");
    }
    const json j = json::parse(m, nullptr, false);
    if (j.is_discarded()) {
        return invalid(error, "not valid JSON");
    }
    if (!j.is_object()) {
        return invalid(error, "a message must be a JSON object");
    }
    if (!string_field(j, "op", true, op.op, error)) {
        return false;
    }
    if (op.op == "subscribe") {
        op.kind = FoxgloveOpKind::subscribe;
        const json* subscriptions = array_field(j, "subscriptions", error);
        if (!subscriptions) {
            return false;
        }
        for (const auto& s : *subscriptions) {
            if (!s.is_object()) {
                return invalid(error, "a subscription must be an object");
            }
            std::uint32_t id = 0;
            std::uint32_t channel = 0;
            if (!u32_field(s, "id", id, error) || !u32_field(s, "channelId", channel, error)) {
                return false;
            }
            op.subscriptions.emplace_back(id, channel);
        }
    } else if (op.op == "unsubscribe" || op.op == "unadvertise") {
        op.kind = op.op == "unsubscribe" ? FoxgloveOpKind::unsubscribe : FoxgloveOpKind::unadvertise;
        const json* ids = array_field(j, op.op == "unsubscribe" ? "subscriptionIds" : "channelIds", error);
        if (!ids) {
            return false;
        }
        for (const auto& id : *ids) {
            if (!id.is_number_integer() || id < 0 ||
                id > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max())) {
                return invalid(error, "ids must be integers in 0..2^32-1");
            }
            op.ids.push_back(id.get<std::uint32_t>());
        }
    } else if (op.op == "advertise") {
        op.kind = FoxgloveOpKind::advertise;
        const json* channels = array_field(j, "channels", error);
        if (!channels) {
            return false;
        }
        for (const auto& c : *channels) {
            if (!c.is_object()) {
                return invalid(error, "a channel must be an object");
            }
            FoxgloveClientChannel ch;
            if (!u32_field(c, "id", ch.id, error) || !string_field(c, "topic", true, ch.topic, error) ||
                !string_field(c, "encoding", true, ch.encoding, error) ||
                !string_field(c, "schemaName", false, ch.schema_name, error) ||
                !string_field(c, "schema", false, ch.schema, error) ||
                !string_field(c, "schemaEncoding", false, ch.schema_encoding, error)) {
                return false;
            }
            if (ch.topic.empty()) {
                return invalid(error, "a channel needs a topic");
            }
            op.channels.push_back(std::move(ch));
        }
    } else if (op.op == "subscribeConnectionGraph") {
        op.kind = FoxgloveOpKind::subscribe_connection_graph;
    } else if (op.op == "unsubscribeConnectionGraph") {
        op.kind = FoxgloveOpKind::unsubscribe_connection_graph;
    } else if (op.op == "getParameters" || op.op == "setParameters" || op.op == "subscribeParameterUpdates" ||
               op.op == "unsubscribeParameterUpdates" || op.op == "fetchAsset") {
        op.kind = FoxgloveOpKind::unsupported;
    } else {
        return invalid(error, "unknown op '" + op.op.substr(0, 64) + "'");
    }
    return true;
}

}  // namespace

std::string select_foxglove_subprotocol(std::string_view offered) {
    // A comma-separated list of tokens; the client's order is its preference.
    while (!offered.empty()) {
        const std::size_t comma = offered.find(',');
        std::string_view token = offered.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
            token.remove_prefix(1);
        }
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
            token.remove_suffix(1);
        }
        for (std::string_view known : foxglove_subprotocols) {
            if (token == known) {
                return std::string(known);
            }
        }
        if (comma == std::string_view::npos) {
            break;
        }
        offered.remove_prefix(comma + 1);
    }
    return {};
}

FoxgloveParse parse_foxglove_message(std::string_view message, bool binary) {
    FoxgloveParse out;
    FoxgloveClientOp op;
    if (binary ? parse_binary(message, op, out.error) : parse_text(message, op, out.error)) {
        out.op = std::move(op);
    }
    return out;
}

std::string foxglove_message_data(std::uint32_t subscription_id, std::uint64_t timestamp, std::string_view payload) {
    std::string out;
    out.reserve(13 + payload.size());
    out += '\x01';
    put_u32(out, subscription_id);
    put_u64(out, timestamp);
    out += payload;
    return out;
}

std::string foxglove_service_response(std::uint32_t service_id,
                                      std::uint32_t call_id,
                                      std::string_view encoding,
                                      std::string_view payload) {
    std::string out;
    out.reserve(13 + encoding.size() + payload.size());
    out += '\x03';
    put_u32(out, service_id);
    put_u32(out, call_id);
    put_u32(out, static_cast<std::uint32_t>(encoding.size()));
    out += encoding;
    out += payload;
    return out;
}

}  // namespace meshy::cli::bridge

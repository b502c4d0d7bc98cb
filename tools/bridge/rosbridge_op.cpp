#include "bridge/rosbridge_op.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "bridge/message_mapping.hpp"

namespace meshy::cli::bridge {
namespace {

using json = nlohmann::json;

struct OpError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string required_string(const json& doc, const char* key) {
    const auto it = doc.find(key);
    if (it == doc.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
        throw OpError(std::string("missing or invalid \"") + key + "\" (a non-empty string)");
    }
    return it->get<std::string>();
}

std::string optional_string(const json& doc, const char* key) {
    const auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) {
        return {};
    }
    if (!it->is_string()) {
        throw OpError(std::string("\"") + key + "\" must be a string");
    }
    return it->get<std::string>();
}

/// A non-negative integer field (rosbridge clients send integers; floats are truncated).
std::uint64_t optional_count(const json& doc, const char* key, std::uint64_t max) {
    const auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) {
        return 0;
    }
    if (!it->is_number()) {
        throw OpError(std::string("\"") + key + "\" must be a number");
    }
    const double v = it->get<double>();
    if (!(v >= 0) || v > static_cast<double>(max)) {
        throw OpError(std::string("\"") + key + "\" out of range");
    }
    return static_cast<std::uint64_t>(v);
}

std::string name_field(const json& doc, const char* key) {
    std::string name = required_string(doc, key);
    if (name.size() > 1024) {
        throw OpError(std::string("\"") + key + "\" longer than 1024 bytes");
    }
    if (meshy_name(name).empty()) {
        throw OpError(std::string("\"") + key + "\" is empty");
    }
    return name;
}

std::string id_text(const json& doc) {
    const auto it = doc.find("id");
    if (it == doc.end() || it->is_null()) {
        return {};
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_number() || it->is_boolean()) {
        return it->dump();
    }
    return {};
}

Buffer mapped(const json& value) {
    try {
        return json_to_payload(value);
    } catch (const MappingError& e) {
        throw OpError(e.what());
    }
}

Op build(const std::string& op_name, const json& doc) {
    Op op;
    op.id = id_text(doc);
    if (op_name == "auth") {
        op.kind = OpKind::auth;
        op.token = optional_string(doc, "token");
        if (op.token.empty()) {
            op.token = optional_string(doc, "mac");
        }
    } else if (op_name == "advertise") {
        op.kind = OpKind::advertise;
        op.name = name_field(doc, "topic");
        op.type = optional_string(doc, "type");
    } else if (op_name == "unadvertise") {
        op.kind = OpKind::unadvertise;
        op.name = name_field(doc, "topic");
    } else if (op_name == "publish") {
        op.kind = OpKind::publish;
        op.name = name_field(doc, "topic");
        const auto msg = doc.find("msg");
        op.payload = mapped(msg == doc.end() ? json::object() : *msg);
    } else if (op_name == "subscribe") {
        op.kind = OpKind::subscribe;
        op.name = name_field(doc, "topic");
        op.type = optional_string(doc, "type");
        op.throttle_rate = static_cast<unsigned>(optional_count(doc, "throttle_rate", 3600u * 1000u));
        op.queue_length = static_cast<unsigned>(optional_count(doc, "queue_length", 1u << 20));
        op.fragment_size = static_cast<std::size_t>(optional_count(doc, "fragment_size", 1u << 30));
        op.compression = optional_string(doc, "compression");
        if (op.compression.empty()) {
            op.compression = "none";
        }
    } else if (op_name == "unsubscribe") {
        op.kind = OpKind::unsubscribe;
        op.name = name_field(doc, "topic");
    } else if (op_name == "call_service") {
        op.kind = OpKind::call_service;
        op.name = name_field(doc, "service");
        const auto args = doc.find("args");
        if (args == doc.end() || args->is_null()) {
            op.payload = mapped(json::array());
        } else {
            op.payload = mapped(*args);
            if (args->is_object()) {
                for (const char* key : {"topic", "service", "node"}) {
                    const auto v = args->find(key);
                    if (v != args->end() && v->is_string()) {
                        op.rosapi_arg = v->get<std::string>();
                        break;
                    }
                }
            }
        }
        const auto timeout = doc.find("timeout");
        if (timeout != doc.end() && !timeout->is_null()) {
            if (!timeout->is_number()) {
                throw OpError("\"timeout\" must be a number of seconds");
            }
            const double t = timeout->get<double>();
            if (!std::isfinite(t) || t < 0 || t > 86400.0) {
                throw OpError("\"timeout\" out of range");
            }
            op.timeout_s = t;
        }
    } else if (op_name == "advertise_service") {
        op.kind = OpKind::advertise_service;
        op.name = name_field(doc, "service");
        op.type = optional_string(doc, "type");
    } else if (op_name == "unadvertise_service") {
        op.kind = OpKind::unadvertise_service;
        op.name = name_field(doc, "service");
    } else if (op_name == "service_response") {
        op.kind = OpKind::service_response;
        op.name = name_field(doc, "service");
        if (op.id.empty()) {
            throw OpError("service_response needs the \"id\" of the call");
        }
        const auto result = doc.find("result");
        op.result = result == doc.end() || !result->is_boolean() || result->get<bool>();
        const auto values = doc.find("values");
        if (!op.result) {
            op.error_text = values == doc.end()   ? std::string("service failed")
                            : values->is_string() ? values->get<std::string>()
                                                  : values->dump(-1, ' ', false, json::error_handler_t::replace);
        } else {
            op.payload = mapped(values == doc.end() || values->is_null() ? json::object() : *values);
        }
    } else if (op_name == "set_level") {
        op.kind = OpKind::set_level;
        op.level = required_string(doc, "level");
        if (op.level != "none" && op.level != "error" && op.level != "warning" && op.level != "info") {
            throw OpError("\"level\" must be none, error, warning or info");
        }
    } else {
        throw OpError("unknown op \"" + op_name + "\"");
    }
    return op;
}

/// Builds the document like nlohmann's DOM parser, but refuses nesting deeper than max_depth (the
/// CBOR reader recurses per level; nothing here may recurse without bound on untrusted input).
class DepthLimitedSax : public nlohmann::json_sax<json> {
public:
    static constexpr int max_depth = 64;
    explicit DepthLimitedSax(json& root) : dom_(root, true) {}
    bool null() override { return dom_.null(); }
    bool boolean(bool v) override { return dom_.boolean(v); }
    bool number_integer(number_integer_t v) override { return dom_.number_integer(v); }
    bool number_unsigned(number_unsigned_t v) override { return dom_.number_unsigned(v); }
    bool number_float(number_float_t v, const string_t& s) override { return dom_.number_float(v, s); }
    bool string(string_t& v) override { return dom_.string(v); }
    bool binary(binary_t& v) override { return dom_.binary(v); }
    bool start_object(std::size_t n) override { return enter() && dom_.start_object(n); }
    bool key(string_t& v) override { return dom_.key(v); }
    bool end_object() override {
        --depth_;
        return dom_.end_object();
    }
    bool start_array(std::size_t n) override { return enter() && dom_.start_array(n); }
    bool end_array() override {
        --depth_;
        return dom_.end_array();
    }
    bool parse_error(std::size_t pos, const std::string& token, const nlohmann::detail::exception& e) override {
        return dom_.parse_error(pos, token, e);
    }
    bool too_deep() const { return too_deep_; }

private:
    bool enter() {
        if (++depth_ > max_depth) {
            too_deep_ = true;
            return false;
        }
        return true;
    }
    nlohmann::detail::json_sax_dom_parser<json> dom_;
    int depth_ = 0;
    bool too_deep_ = false;
};

}  // namespace

std::string meshy_name(std::string_view rosbridge_name) {
    if (!rosbridge_name.empty() && rosbridge_name.front() == '/') {
        rosbridge_name.remove_prefix(1);
    }
    return std::string(rosbridge_name);
}

std::string rosbridge_name(std::string_view meshy_name) {
    if (!meshy_name.empty() && meshy_name.front() == '/') {
        return std::string(meshy_name);
    }
    return "/" + std::string(meshy_name);
}

OpParse parse_op(std::string_view message, bool cbor) {
    OpParse out;
    json doc;
    try {
        DepthLimitedSax sax(doc);
        const bool ok = cbor ? json::sax_parse(message.begin(), message.end(), &sax, json::input_format_t::cbor)
                             : json::sax_parse(message.begin(), message.end(), &sax);
        if (!ok) {
            out.error = sax.too_deep() ? "op nested deeper than 64 levels"
                                       : std::string(cbor ? "malformed CBOR" : "malformed JSON");
            return out;
        }
    } catch (const json::exception& e) {
        out.error = std::string(cbor ? "malformed CBOR: " : "malformed JSON: ") + e.what();
        return out;
    }
    if (!doc.is_object()) {
        out.error = "an op must be a JSON object";
        return out;
    }
    out.id = id_text(doc);
    const auto op = doc.find("op");
    if (op == doc.end() || !op->is_string()) {
        out.error = "missing \"op\"";
        return out;
    }
    out.op_name = op->get<std::string>();
    try {
        out.op = build(out.op_name, doc);
    } catch (const OpError& e) {
        out.error = out.op_name + ": " + e.what();
    } catch (const json::exception& e) {
        out.error = out.op_name + ": " + e.what();
    }
    return out;
}

}  // namespace meshy::cli::bridge

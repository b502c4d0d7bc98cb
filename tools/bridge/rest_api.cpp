#include "bridge/rest_api.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <cmath>
#include <meshy/error.hpp>
#include <meshy/log.hpp>
#include <meshy/node.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>
#include <variant>

#include "bridge/message_mapping.hpp"
#include "bridge/mjpeg_frame.hpp"
#include "bridge/mjpeg_stream.hpp"
#include "bridge/rest_openapi.hpp"
#include "bridge/rest_route.hpp"
#include "bridge/rosbridge_op.hpp"
#include "bridge/websocket_handshake.hpp"

namespace meshy::cli::bridge {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::chrono::milliseconds body_timeout{10000};
constexpr double max_wait_s = 30.0;

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool same_secret(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

template <class T>
std::string type_text(const T& t) {
    if constexpr (requires { t.has_value(); }) {
        return t ? std::string(*t) : std::string();
    } else {
        return std::string(t);
    }
}

// The topics a node publishes, with their types when known. NodeInfo has no `publications` yet (the
// core advertises publishers next); this compiles either way and reads it once it is there, as a
// list of names or of {topic|name, type} entries.
template <class Info>
std::vector<std::pair<std::string, std::string>> publications_of(const Info& n) {
    std::vector<std::pair<std::string, std::string>> out;
    if constexpr (requires { n.publications; }) {
        for (const auto& p : n.publications) {
            using P = std::decay_t<decltype(p)>;
            if constexpr (std::is_convertible_v<P, std::string>) {
                out.emplace_back(std::string(p), std::string());
            } else if constexpr (requires {
                                     p.topic;
                                     p.type;
                                 }) {
                out.emplace_back(std::string(p.topic), type_text(p.type));
            } else if constexpr (requires {
                                     p.name;
                                     p.type;
                                 }) {
                out.emplace_back(std::string(p.name), type_text(p.type));
            } else if constexpr (requires {
                                     p.first;
                                     p.second;
                                 }) {
                out.emplace_back(std::string(p.first), type_text(p.second));
            }
        }
    }
    return out;
}

// A POST body -> the message's JSON form for json_to_payload(): {"args": [...], "kwargs": {...}}
// (either may be left out), or any other JSON value as the one argument.
json body_to_arguments(const json& body) {
    if (body.is_object() && !body.empty()) {
        const auto args = body.find("args");
        const auto kwargs = body.find("kwargs");
        const std::size_t known = (args != body.end()) + (kwargs != body.end());
        if (known == body.size() && (args == body.end() || args->is_array()) &&
            (kwargs == body.end() || kwargs->is_object())) {
            json out = kwargs == body.end() ? json::object() : *kwargs;
            if (out.contains("args")) {
                throw MappingError("a keyword argument may not be called 'args'");
            }
            if (out.empty()) {
                return args == body.end() ? json::array() : *args;
            }
            if (args != body.end()) {
                out["args"] = *args;
            }
            return out;
        }
    }
    return json::array({body});
}

// A request body -> the message's payload; nullopt with `error` set for bad JSON or a shape meshy
// cannot carry. An empty body is no arguments when `empty_ok`.
std::optional<Buffer> body_to_payload(const std::string& body, bool empty_ok, std::string& error) {
    try {
        if (body.empty() && empty_ok) {
            return json_to_payload(json::array());
        }
        return json_to_payload(body_to_arguments(json::parse(body)));
    } catch (const std::exception& e) {
        error = e.what();
        return std::nullopt;
    }
}

std::string published_body(const std::string& topic) {
    return dump(json{{"topic", rosbridge_name(topic)}}) + "\n";
}

std::string error_body(const std::string& message, int status) {
    return dump(json{{"error", message}, {"status", status}}) + "\n";
}

int status_of(const std::error_code& ec) {
    if (ec.category() != meshy::error_category()) {
        return 502;
    }
    switch (static_cast<errc>(ec.value())) {
        case errc::no_provider:
            return 404;
        case errc::timeout:
            return 504;
        case errc::invalid_argument:
            return 400;
        default:
            return 502;
    }
}

}  // namespace

/// GET /api/topics/{name}/latest?wait=S requests waiting for a first message.
struct RestApi::Waiters {
    std::multimap<std::string, asio::steady_timer*> by_topic;
};

RestApi::RestApi(asio::any_io_executor executor, Node& node, const BridgeOptions& options, Hooks hooks)
    : executor_(std::move(executor)),
      node_(node),
      options_(options),
      hooks_(std::move(hooks)),
      topics_(options_.topics_glob),
      publish_(options_.publish_glob.empty() ? options_.topics_glob : options_.publish_glob),
      services_(options_.services_glob),
      waiters_(std::make_unique<Waiters>()) {
    streams_ =
        std::make_unique<MjpegStreams>(executor_, options_.stall_timeout,
                                       MjpegStreams::Hooks{
                                           [this](const std::string& topic) { want(topic, latest_.tracks(topic)); },
                                           [this](const std::string& topic) { unwant(topic); },
                                       });
}

RestApi::~RestApi() {
    *alive_ = false;
}

bool RestApi::wants(const std::string& topic) const {
    return latest_.tracks(topic) || streams_->streams(topic);
}

void RestApi::want(const std::string& topic, bool wanted_before) {
    if (!wanted_before && hooks_.listen) {
        hooks_.listen(topic);
    }
}

void RestApi::unwant(const std::string& topic) {
    if (!wants(topic) && hooks_.unlisten && !stopped_) {
        hooks_.unlisten(topic);
    }
}

void RestApi::stop() {
    stopped_ = true;
    streams_->stop();
    for (auto& [topic, timer] : waiters_->by_topic) {
        timer->cancel();
    }
}

void RestApi::note(const std::string& peer, const std::string& what) {
    // One line a second at most: a client hammering the API with bad requests does not flood the log.
    const auto now = Clock::now();
    if (now - last_note_ < std::chrono::seconds(1)) {
        ++unnoted_;
        return;
    }
    last_note_ = now;
    std::string line = "bridge: " + peer + ": " + what;
    if (unnoted_ > 0) {
        line += " (and " + std::to_string(unnoted_) + " more refused request(s))";
        unnoted_ = 0;
    }
    log(LogLevel::warn, line);
}

int RestApi::auth_status(const HttpRequest& request) const {
    if (options_.token.empty()) {
        return 200;
    }
    std::optional<std::string> presented;
    if (const std::string* h = request.header("Authorization")) {
        constexpr std::string_view scheme = "Bearer ";
        if (h->size() > scheme.size() && iequals(std::string_view(*h).substr(0, scheme.size()), scheme)) {
            std::string_view t = std::string_view(*h).substr(scheme.size());
            while (!t.empty() && t.front() == ' ') {
                t.remove_prefix(1);
            }
            presented = std::string(t);
        } else {
            presented = std::string();  // another scheme: not our token
        }
    } else {
        // For what cannot set a header: <img src="/stream/...?token=..."> and EventSource.
        presented = request.query_param("token");
    }
    if (!presented) {
        return 401;
    }
    return same_secret(*presented, options_.token) ? 200 : 403;
}

std::string RestApi::cors_headers(const HttpRequest& request) const {
    const std::string* origin = request.header("Origin");
    if (!origin) {
        return {};
    }
    // Only the explicit allowlist gets CORS headers; the dashboard, same-origin, needs none.
    for (const auto& allowed : options_.allow_origin) {
        if (allowed == "*" || iequals(allowed, *origin)) {
            return "Access-Control-Allow-Origin: " + *origin + "\r\nVary: Origin\r\n";
        }
    }
    return {};
}

std::string RestApi::json_response(int status, const std::string& body, const HttpRequest& request) const {
    std::string extra = cors_headers(request);
    if (status == 401) {
        extra += "WWW-Authenticate: Bearer realm=\"meshy bridge\"\r\n";
    }
    return http_response(status, "application/json", request.method == "HEAD" ? std::string_view{} : body, extra);
}

std::string RestApi::error_response(int status, const std::string& message, const HttpRequest& request) const {
    return json_response(status, error_body(message, status), request);
}

bool RestApi::topic_visible(const std::string& topic) const {
    return topics_.allows(topic) || publish_.allows(topic);
}

HttpDecision RestApi::on_request(WebSocketSession& session, const HttpRequest& request) {
    HttpDecision d;
    const RestRoute route = parse_rest_route(request.method, request.path());
    if (stopped_) {
        d.response = error_response(503, "the bridge is stopping", request);
        return d;
    }
    if (request.method == "OPTIONS") {
        // CORS preflight: answered without the token (browsers never send credentials with it).
        const std::string cors = cors_headers(request);
        const std::string methods = route.allowed_method.empty() ? "GET, POST" : route.allowed_method;
        std::string extra = cors + "Allow: " + methods + ", OPTIONS\r\n";
        if (!cors.empty()) {
            extra += "Access-Control-Allow-Methods: " + methods + ", OPTIONS\r\n";
            extra += "Access-Control-Allow-Headers: Authorization, Content-Type\r\n";
            extra += "Access-Control-Max-Age: 600\r\n";
        }
        d.response = http_response(204, "text/plain", {}, extra);
        return d;
    }
    switch (route.endpoint) {
        case RestEndpoint::none:
        case RestEndpoint::not_found:
            d.response = error_response(
                404, "no such endpoint: " + std::string(request.path()) + " (see /api/openapi.json)", request);
            return d;
        case RestEndpoint::bad_name:
            d.response = error_response(400, "bad name in " + std::string(request.path()), request);
            return d;
        default:
            break;
    }
    if (!route.method_ok) {
        std::string extra = cors_headers(request) + "Allow: " + route.allowed_method + ", OPTIONS\r\n";
        d.response = http_response(
            405, "application/json",
            dump(json{{"error", request.method + " not allowed here, use " + route.allowed_method}, {"status", 405}}) +
                "\n",
            extra);
        return d;
    }
    if (route.endpoint == RestEndpoint::openapi) {
        d.response = json_response(200, std::string(rest_openapi_json()), request);
        return d;
    }
    if (const int auth = auth_status(request); auth != 200) {
        note(session.peer(), auth == 401 ? "REST request without a token" : "REST request with a wrong token");
        d.response = error_response(
            auth, auth == 401 ? "a token is needed: Authorization: Bearer TOKEN" : "wrong token", request);
        return d;
    }
    const std::string display = rosbridge_name(route.name);
    switch (route.endpoint) {
        case RestEndpoint::nodes:
            d.response = json_response(200, nodes_json(), request);
            return d;
        case RestEndpoint::topics:
            d.response = json_response(200, topics_json(), request);
            return d;
        case RestEndpoint::services:
            d.response = json_response(200, services_json(), request);
            return d;
        case RestEndpoint::latest:
            if (!topics_.allows(route.name)) {
                note(session.peer(), "REST: reading '" + display + "' not allowed");
                d.response = error_response(403, "not allowed: reading '" + display + "' (--topics-glob)", request);
                return d;
            }
            return latest(route, request);
        case RestEndpoint::stream: {
            if (!topics_.allows(route.name)) {
                note(session.peer(), "REST: streaming '" + display + "' not allowed");
                d.response = error_response(403, "not allowed: streaming '" + display + "' (--topics-glob)", request);
                return d;
            }
            double fps = MjpegStreams::default_fps;
            if (const auto f = request.query_param("max_fps")) {
                char* end = nullptr;
                const double v = std::strtod(f->c_str(), &end);
                if (f->empty() || *end != '\0' || !std::isfinite(v)) {
                    d.response = error_response(400, "max_fps must be a number", request);
                    return d;
                }
                fps = v;
            }
            if (request.method == "HEAD") {
                d.response = mjpeg_response_head(cors_headers(request));
                return d;
            }
            d.handler = [this, topic = route.name, fps, extra = cors_headers(request)](WebSocketSession& s) {
                return streams_->serve(s, topic, fps, extra);
            };
            return d;
        }
        case RestEndpoint::publish:
            if (!publish_.allows(route.name)) {
                note(session.peer(), "REST: publishing to '" + display + "' not allowed");
                d.response = error_response(
                    403, "not allowed: publishing to '" + display + "' (--publish-glob/--topics-glob)", request);
                return d;
            }
            d.handler = [this, request, topic = route.name](WebSocketSession& s) {
                return publish(s, request, topic);
            };
            return d;
        case RestEndpoint::call:
            if (!services_.allows(route.name)) {
                note(session.peer(), "REST: calling '" + display + "' not allowed");
                d.response = error_response(403, "not allowed: calling '" + display + "' (--services-glob)", request);
                return d;
            }
            d.handler = [this, request, service = route.name](WebSocketSession& s) {
                return call(s, request, service);
            };
            return d;
        default:
            d.response = error_response(404, "no such endpoint", request);
            return d;
    }
}

std::string RestApi::nodes_json() const {
    json out = json::array();
    for (const auto& n : node_.nodes()) {
        json listens = json::array();
        for (const auto& t : n.topics) {
            if (topic_visible(t)) {
                listens.push_back(rosbridge_name(t));
            }
        }
        json publishes = json::array();
        for (const auto& [t, type] : publications_of(n)) {
            if (topic_visible(t)) {
                publishes.push_back(rosbridge_name(t));
            }
        }
        if (n.is_self && hooks_.advertised) {
            for (const auto& [t, type] : hooks_.advertised()) {
                if (topic_visible(t)) {
                    publishes.push_back(rosbridge_name(t));
                }
            }
        }
        json services = json::array();
        for (const auto& s : n.services) {
            if (services_.allows(s)) {
                services.push_back(rosbridge_name(s));
            }
        }
        out.push_back({{"name", n.name},
                       {"id", n.id},
                       {"host", n.host},
                       {"domain", n.domain},
                       {"transport", n.transport},
                       {"self", n.is_self},
                       {"listens", std::move(listens)},
                       {"publishes", std::move(publishes)},
                       {"services", std::move(services)}});
    }
    return dump(out) + "\n";
}

std::string RestApi::topics_json() const {
    struct Entry {
        std::string type;
        std::set<std::string> publishers;
        std::set<std::string> listeners;
    };
    std::map<std::string, Entry> topics;
    for (const auto& n : node_.nodes()) {
        for (const auto& t : n.topics) {
            topics[t].listeners.insert(n.name);
        }
        for (const auto& [t, type] : publications_of(n)) {
            auto& e = topics[t];
            e.publishers.insert(n.name);
            if (!type.empty()) {
                e.type = type;
            }
        }
        if (n.is_self && hooks_.advertised) {
            for (const auto& [t, type] : hooks_.advertised()) {
                auto& e = topics[t];
                e.publishers.insert(n.name);
                if (!type.empty() && e.type.empty()) {
                    e.type = type;
                }
            }
        }
    }
    json out = json::array();
    for (auto& [t, e] : topics) {
        if (!topic_visible(t)) {
            continue;
        }
        if (e.type.empty() && hooks_.topic_types) {
            if (const auto it = hooks_.topic_types->find(t); it != hooks_.topic_types->end()) {
                e.type = it->second;
            }
        }
        out.push_back({{"name", rosbridge_name(t)},
                       {"type", e.type},
                       {"publishers", std::vector<std::string>(e.publishers.begin(), e.publishers.end())},
                       {"listeners", std::vector<std::string>(e.listeners.begin(), e.listeners.end())}});
    }
    return dump(out) + "\n";
}

std::string RestApi::services_json() const {
    std::map<std::string, std::set<std::string>> services;
    for (const auto& n : node_.nodes()) {
        for (const auto& s : n.services) {
            services[s].insert(n.name);
        }
    }
    json out = json::array();
    for (const auto& [s, providers] : services) {
        if (!services_.allows(s)) {
            continue;
        }
        std::string type;
        if (hooks_.service_types) {
            if (const auto it = hooks_.service_types->find(s); it != hooks_.service_types->end()) {
                type = it->second;
            }
        }
        out.push_back({{"name", rosbridge_name(s)},
                       {"type", type},
                       {"providers", std::vector<std::string>(providers.begin(), providers.end())}});
    }
    return dump(out) + "\n";
}

void RestApi::on_topic(const RawMessage& m) {
    const std::string topic(m.topic);
    if (latest_.tracks(topic)) {
        latest_.store(
            topic,
            LatestMessage{m.codec, std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()),
                          m.sent_at_ns, std::chrono::system_clock::now()});
        const auto [first, last] = waiters_->by_topic.equal_range(topic);
        for (auto it = first; it != last; ++it) {
            it->second->cancel();
        }
    }
    streams_->on_message(m);
}

std::string RestApi::latest_body(const std::string& topic) const {
    const LatestMessage* m = latest_.find(topic);
    const auto received_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(m->received.time_since_epoch()).count();
    const auto bytes = std::as_bytes(std::span(m->payload.data(), m->payload.size()));
    json out = {{"topic", rosbridge_name(topic)},
                {"msg", payload_to_json(m->codec, bytes, false)},
                {"received_at_ms", received_ms}};
    if (m->sent_at_ns != 0) {
        out["sent_at_ns"] = m->sent_at_ns;
    }
    return dump(out) + "\n";
}

HttpDecision RestApi::latest(const RestRoute& route, const HttpRequest& request) {
    HttpDecision d;
    const std::string& topic = route.name;
    double wait_s = 0;
    if (const auto w = request.query_param("wait")) {
        char* end = nullptr;
        wait_s = std::strtod(w->c_str(), &end);
        if (w->empty() || *end != '\0' || !std::isfinite(wait_s) || wait_s < 0) {
            d.response = error_response(400, "wait must be a number of seconds", request);
            return d;
        }
    }
    const bool wanted = wants(topic);
    for (const auto& evicted : latest_.track(topic)) {
        unwant(evicted);
    }
    want(topic, wanted);
    if (latest_.find(topic)) {
        d.response = json_response(200, latest_body(topic), request);
        return d;
    }
    if (wait_s <= 0) {
        d.response = error_response(
            404, "no message on '" + rosbridge_name(topic) + "' yet (the bridge listens to it from now on)", request);
        return d;
    }
    d.handler = [this, request, topic, wait_s](WebSocketSession& s) {
        return wait_latest(s, request, topic, std::min(wait_s, max_wait_s));
    };
    return d;
}

asio::awaitable<void> RestApi::wait_latest(WebSocketSession& session,
                                           HttpRequest request,
                                           std::string topic,
                                           double wait_s) {
    asio::steady_timer timer(executor_);
    const auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s));
    const auto alive = alive_;
    const auto entry = waiters_->by_topic.emplace(topic, &timer);
    while (!stopped_ && latest_.tracks(topic) && !latest_.find(topic) && Clock::now() < deadline) {
        timer.expires_at(deadline);
        std::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!*alive) {
            co_return;
        }
    }
    waiters_->by_topic.erase(entry);
    if (latest_.find(topic)) {
        co_await session.write_all(json_response(200, latest_body(topic), request));
    } else {
        co_await session.write_all(
            error_response(404, "no message on '" + rosbridge_name(topic) + "' within the wait", request));
    }
}

asio::awaitable<bool> RestApi::read_body(WebSocketSession& session, const HttpRequest& request, std::string& body) {
    if (request.header("Transfer-Encoding")) {
        co_await session.write_all(
            error_response(411, "send the body with a Content-Length (chunked bodies are not supported)", request));
        co_return false;
    }
    const std::string* length_text = request.header("Content-Length");
    std::size_t length = 0;
    if (length_text) {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(length_text->c_str(), &end, 10);
        if (length_text->empty() || *end != '\0' || (*length_text)[0] == '-') {
            co_await session.write_all(error_response(400, "bad Content-Length", request));
            co_return false;
        }
        if (v > options_.max_message_size) {
            note(session.peer(), "REST body of " + *length_text + " bytes refused (--max-message-size)");
            co_await session.write_all(error_response(
                413, "body over " + std::to_string(options_.max_message_size) + " bytes (--max-message-size)",
                request));
            co_return false;
        }
        length = static_cast<std::size_t>(v);
    }
    if (const std::string* expect = request.header("Expect"); expect && iequals(*expect, "100-continue")) {
        co_await session.write_all("HTTP/1.1 100 Continue\r\n\r\n");
    }
    body = session.take_buffered();
    if (body.size() > length) {
        body.resize(length);  // no pipelining: the connection closes after the response
    }
    std::vector<char> chunk(16 * 1024);
    asio::steady_timer timer(executor_);
    timer.expires_after(body_timeout);
    using namespace asio::experimental::awaitable_operators;
    while (body.size() < length) {
        auto got = co_await (session.read_some(chunk.data(), std::min(chunk.size(), length - body.size())) ||
                             timer.async_wait(asio::use_awaitable));
        if (got.index() == 1) {
            note(session.peer(), "REST body not complete within 10 s");
            session.abort();
            co_return false;
        }
        body.append(chunk.data(), std::get<0>(got));
    }
    co_return true;
}

asio::awaitable<void> RestApi::publish(WebSocketSession& session, HttpRequest request, std::string topic) {
    const auto alive = alive_;
    std::string body;
    if (!co_await read_body(session, request, body) || !*alive) {
        co_return;
    }
    std::string error;
    const std::optional<Buffer> payload = body_to_payload(body, false, error);
    if (!payload) {
        note(session.peer(), "REST publish to '" + rosbridge_name(topic) + "': bad body");
        co_await session.write_all(error_response(400, "bad body: " + error, request));
        co_return;
    }
    if (stopped_) {
        co_return;
    }
    node_.send_raw(topic, CodecId::msgpack, payload->bytes());
    // Built before the co_await: GCC 12 cannot keep an initializer list alive across one.
    const std::string response = json_response(200, published_body(topic), request);
    co_await session.write_all(response);
}

asio::awaitable<void> RestApi::call(WebSocketSession& session, HttpRequest request, std::string service) {
    const auto alive = alive_;
    std::string body;
    if (!co_await read_body(session, request, body) || !*alive) {
        co_return;
    }
    std::string error;
    std::optional<Buffer> payload = body_to_payload(body, true, error);
    if (!payload) {
        note(session.peer(), "REST call of '" + rosbridge_name(service) + "': bad body");
        co_await session.write_all(error_response(400, "bad body: " + error, request));
        co_return;
    }
    std::chrono::milliseconds timeout = options_.service_timeout;
    if (const auto t = request.query_param("timeout")) {
        char* end = nullptr;
        const double s = std::strtod(t->c_str(), &end);
        if (t->empty() || *end != '\0' || !std::isfinite(s) || s <= 0 || s > 86400) {
            co_await session.write_all(error_response(400, "timeout must be seconds in (0, 86400]", request));
            co_return;
        }
        timeout = std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(s * 1000.0)));
    }
    int status = 200;
    std::string response_body;
    try {
        const RawPayload reply =
            co_await node_.call_raw(service, CodecId::msgpack, std::move(*payload), CallOptions{timeout});
        response_body = dump(payload_to_json(reply.codec, reply.bytes.bytes(), false)) + "\n";
    } catch (const std::system_error& e) {
        status = status_of(e.code());
        response_body = error_body(e.what(), status);
    } catch (const std::exception& e) {
        status = 502;
        response_body = error_body(e.what(), status);
    }
    if (!*alive) {
        co_return;
    }
    co_await session.write_all(json_response(status, response_body, request));
}

}  // namespace meshy::cli::bridge

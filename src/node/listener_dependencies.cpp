#include "node/listener_dependencies.hpp"

#include <utility>

#include "meshy/log.hpp"

namespace meshy::detail {

ListenerDependencies::ListenerDependencies(Actions actions) : actions_(std::move(actions)) {
}

void ListenerDependencies::add(std::string downstream, std::string upstream, ListenerFn fn) {
    {
        std::lock_guard lock(mutex_);
        dependencies_.push_back(
            {std::move(downstream), std::move(upstream), std::make_shared<ListenerFn>(std::move(fn)), false});
    }
    evaluate();
}

bool ListenerDependencies::empty() const {
    std::lock_guard lock(mutex_);
    return dependencies_.empty();
}

void ListenerDependencies::clear() {
    std::lock_guard lock(mutex_);
    dependencies_.clear();
}

void ListenerDependencies::evaluate() {
    std::vector<std::pair<std::string, std::shared_ptr<ListenerFn>>> start;
    std::vector<std::string> stop;
    {
        std::lock_guard lock(mutex_);
        for (auto& d : dependencies_) {
            const bool needed = actions_.has_listeners(d.downstream);
            if (needed && !d.active) {
                d.active = true;
                start.emplace_back(d.upstream, d.fn);
            } else if (!needed && d.active) {
                d.active = false;
                stop.push_back(d.upstream);
            }
        }
    }
    for (auto& [topic, fn] : start) {
        log(LogLevel::debug, "'" + topic + "' has a downstream listener again: listening");
        actions_.listen(topic, *fn);
    }
    for (auto& topic : stop) {
        log(LogLevel::debug, "nobody listens downstream of '" + topic + "': stopped listening");
        actions_.stop_listening(topic);
    }
}

}  // namespace meshy::detail

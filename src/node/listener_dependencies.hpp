// Internal: listeners that exist only while somebody consumes what they produce (rosy's
// depends_on_listener): this node listens to an upstream topic while its downstream topic has a
// listener, and stops listening when the last one is gone.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "meshy/node.hpp"

namespace meshy::detail {

class ListenerDependencies {
public:
    /// What the dependencies ask of the node; called without this part's lock held.
    struct Actions {
        std::function<bool(std::string_view topic)> has_listeners;  // here or on a peer
        std::function<void(std::string topic, ListenerFn fn)> listen;
        std::function<void(std::string_view topic)> stop_listening;
    };
    explicit ListenerDependencies(Actions actions);

    /// Listen to `upstream` with `fn` while `downstream` has listeners (looked at now, and at
    /// each evaluate()).
    void add(std::string downstream, std::string upstream, ListenerFn fn);
    /// Starts and stops the upstream listeners whose downstream gained or lost its listeners.
    void evaluate();
    /// No dependency was added (evaluate() has nothing to do).
    bool empty() const;
    /// Forgets every dependency (the node stops).
    void clear();

private:
    struct Dependency {
        std::string downstream, upstream;
        std::shared_ptr<ListenerFn> fn;
        bool active = false;
    };
    Actions actions_;
    mutable std::mutex mutex_;  // guards dependencies_
    std::vector<Dependency> dependencies_;
};

}  // namespace meshy::detail

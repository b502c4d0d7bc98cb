// `meshy launch`: starts the nodes of a launch file, prefixes their output, respawns them, and
// stops them in order. One thread, one poll loop: the children's pipes, a signalfd (SIGINT,
// SIGTERM, SIGCHLD) and timers (delays, respawns, the stop sequence's grace periods).
#pragma once

#include <string>
#include <vector>

#include "launch_config.hpp"

namespace meshy::cli::launch {

/// A node that starts on this host: its settings and what exactly runs.
struct PlannedNode {
    NodeConfig config;
    std::vector<std::string> argv;  ///< node_argv(config)
    std::vector<std::string> env;   ///< the complete environment, "NAME=value"
};

struct SupervisorOptions {
    /// Seconds between SIGINT and SIGTERM, and between SIGTERM and SIGKILL, when stopping.
    double grace = 5.0;
    /// Printed as launch's own status lines before anything starts (what is skipped, and why).
    std::vector<std::string> notes;
};

/// How the launch ended.
struct SupervisorResult {
    int copies = 0;                   ///< copies started (each counted once, however often respawned)
    std::vector<std::string> failed;  ///< "LABEL: STATUS" of each copy that ended badly
    bool stopped_by_signal = false;   ///< SIGINT/SIGTERM to launch ended it
};

/// Starts `nodes` in order (pre_delay, `number` copies, post_delay, next), prints each child line
/// as "[LABEL] line", respawns as configured, and returns once every copy has ended and no respawn
/// is pending, or after a stop signal has stopped them all (SIGINT, grace, SIGTERM, grace,
/// SIGKILL). Ends with a summary of how each copy ended.
/// Expects SIGINT and SIGTERM blocked in every thread (main's block_signals()); blocks SIGCHLD.
SupervisorResult supervise(const std::vector<PlannedNode>& nodes, const SupervisorOptions& options);

}  // namespace meshy::cli::launch

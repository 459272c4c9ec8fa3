// Process plumbing shared by every program's main(): stop signals, logging set-up, and the
// command-line flags every bus client has. Only main() calls these.
#pragma once

#include <atomic>
#include <string>

#include <CLI/CLI.hpp>

#include "op/bus/endpoints.hpp"

namespace op::runtime {

// Installs SIGINT/SIGTERM handlers that set the returned flag (and ignores SIGPIPE).
const std::atomic<bool>& install_stop_signals();

// Adds --publish, --live and --replay (the broker's endpoints) to `app`.
void add_endpoint_flags(CLI::App& app, bus::Endpoints& endpoints, bool binding);

// Adds --log-level.
void add_log_level_flag(CLI::App& app, std::string& level);

// Sets spdlog's level and a pattern carrying the program name; SPDLOG_LEVEL overrides.
void setup_logging(const std::string& program, const std::string& level);

}  // namespace op::runtime

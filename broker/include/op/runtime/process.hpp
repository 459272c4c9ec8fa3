// Process plumbing shared by every program's main(): stop signals, logging set-up, and the
// command-line flags every bus client has. Only main() calls these.
#pragma once

#include <atomic>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "op/bus/endpoints.hpp"

namespace op::runtime {

// Installs SIGINT/SIGTERM handlers that set the returned flag (and ignores SIGPIPE).
const std::atomic<bool>& install_stop_signals();

// Adds --publish, --live and --replay (the broker's endpoints) to `app`.
void add_endpoint_flags(CLI::App& app, bus::Endpoints& endpoints, bool binding);

// How a program proves who it is to the broker (see docs/SECURITY.md).
struct SecurityFlags {
    std::filesystem::path keys_dir;  // empty: the program's default (DATA_DIR/keys)
    bool insecure = false;
    std::string identity;            // a client's name in authorized_keys and the policy
};

// Adds --keys-dir and --insecure, and for a client (`identity` not empty) --identity with that
// default. `default_keys_dir` is what --help says an empty --keys-dir means.
void add_security_flags(CLI::App& app, SecurityFlags& flags, const std::string& identity,
                        const std::string& default_keys_dir);

// The client's CurveZMQ keys: KEYS_DIR/broker.pub and KEYS_DIR/<identity>.secret, none with
// --insecure. Throws std::runtime_error saying which file is missing and how to make it.
bus::ClientCurveKeys load_client_keys(const SecurityFlags& flags,
                                      const std::filesystem::path& default_keys_dir);

// Raises this process's soft limit on open files towards `wanted` (never past the hard limit,
// never lowering it) and returns the limit now in force. Many systems start programs at 1024,
// fewer than the connections a server or a load generator holds.
std::size_t raise_open_file_limit(std::size_t wanted);

// Adds --log-level.
void add_log_level_flag(CLI::App& app, std::string& level);

// Sets spdlog's level and a pattern carrying the program name; SPDLOG_LEVEL overrides.
void setup_logging(const std::string& program, const std::string& level);

}  // namespace op::runtime

// `broker keys ...`: makes, rotates, revokes and lists the CurveZMQ keys of a deployment.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>

#include <CLI/CLI.hpp>

namespace op::broker {

struct KeysCommand {
    std::filesystem::path data_dir = "var";
    std::filesystem::path keys_dir;  // empty: data_dir/keys
    std::string action;              // init, rotate, revoke, list
    std::string identity;            // for rotate and revoke

    std::filesystem::path dir() const { return keys_dir.empty() ? data_dir / "keys" : keys_dir; }
};

// Adds the `keys` subcommand (and its own subcommands) to the broker's command line.
CLI::App* add_keys_command(CLI::App& app, KeysCommand& command);

// Carries out the parsed command, reporting to `out`. Returns the exit status; throws
// security::KeyError on a file it cannot read or write.
int run_keys_command(const KeysCommand& command, std::ostream& out);

}  // namespace op::broker

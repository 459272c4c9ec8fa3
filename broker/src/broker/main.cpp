// broker: the durable event log and its three ZeroMQ endpoints; `broker export` dumps the log.
#include <unistd.h>

#include <fstream>
#include <iostream>

#include <spdlog/spdlog.h>

#include "export_log.hpp"
#include "keys_command.hpp"
#include "op/broker/broker.hpp"
#include "op/runtime/process.hpp"

int main(int argc, char** argv) {
    op::broker::BrokerConfig config;
    std::string log_level = "info";

    CLI::App app{"The order pipeline's broker: validates, numbers and durably logs every event, "
                 "acknowledges publishers once an event is fdatasynced, fans events out live and "
                 "replays the log from any seq."};
    app.add_option("--data-dir", config.data_dir,
                   "directory for runtime state; the log goes in DATA_DIR/broker/log")
        ->capture_default_str();
    op::runtime::add_endpoint_flags(app, config.endpoints, true);
    app.add_option("--segment-size", config.segment_bytes,
                   "size at which a log segment file rolls: bytes, or with a unit (64MiB, 16KiB)")
        ->default_str("64MiB")
        ->transform(CLI::AsSizeValue(false))
        ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{4} << 30)
                    .description("between 1KiB and 4GiB"));
    std::uint64_t retention_s = 0;
    app.add_option("--retention-age", retention_s,
                   "delete full log segments older than this (seconds, or with a unit: 90m, "
                   "12h, 7d) once every consumer has reported a checkpoint past them; replays "
                   "from before the oldest kept event are then refused. 0 keeps everything")
        ->default_str("0")
        ->transform(CLI::AsNumberWithUnit(
            std::map<std::string, std::uint64_t>{{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
            CLI::AsNumberWithUnit::CASE_SENSITIVE));
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "", "DATA_DIR/keys");
    op::runtime::add_log_level_flag(app, log_level);

    op::broker::KeysCommand keys_command;
    auto* keys_cmd = op::broker::add_keys_command(app, keys_command);

    op::broker::ExportOptions export_options;
    op::runtime::SecurityFlags export_security;
    std::string output = "-";
    auto* export_cmd = app.add_subcommand(
        "export", "Write the log of a running broker as NDJSON (one event per line, as appended)");
    export_cmd->add_option("--live", export_options.endpoints.live, "the broker's live endpoint")
        ->capture_default_str();
    export_cmd
        ->add_option("--replay", export_options.endpoints.replay, "the broker's replay endpoint")
        ->capture_default_str();
    export_cmd->add_option("--from", export_options.from, "first seq to export")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    export_cmd->add_option("--to", export_options.to, "last seq to export (default: the head)");
    export_cmd->add_option("-o,--output", output, "file to write, - for stdout")
        ->capture_default_str();
    op::runtime::add_security_flags(*export_cmd, export_security, "operator", "var/keys");
    CLI11_PARSE(app, argc, argv);

    if (*keys_cmd) {
        try {
            return op::broker::run_keys_command(keys_command, std::cout);
        } catch (const std::exception& e) {
            std::cerr << "broker keys: " << e.what() << "\n";
            return 1;
        }
    }

    const auto& stop = op::runtime::install_stop_signals();
    if (*export_cmd) {
        op::runtime::setup_logging("broker-export", "warn");
        try {
            std::ofstream file;
            if (output != "-") {
                file.open(output, std::ios::trunc);
                if (!file) {
                    spdlog::critical("cannot write {}", output);
                    return 2;
                }
            }
            std::ostream& out = output == "-" ? std::cout : file;
            export_options.progress = isatty(2) != 0;
            export_options.endpoints.curve =
                op::runtime::load_client_keys(export_security, "var/keys");
            op::broker::export_log(export_options, out, stop);
        } catch (const std::exception& e) {
            spdlog::critical("export failed: {}", e.what());
            return 1;
        }
        return 0;
    }

    op::runtime::setup_logging("broker", log_level);
    config.secure = !security.insecure;
    config.retention_age = std::chrono::seconds(retention_s);
    config.keys_dir = security.keys_dir;
    try {
        op::broker::Broker broker(config);
        broker.run(stop);
    } catch (const std::exception& e) {
        spdlog::critical("broker failed: {}", e.what());
        return 1;
    }
    return 0;
}

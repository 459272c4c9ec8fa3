// broker: the durable event log and its three ZeroMQ endpoints.
#include <spdlog/spdlog.h>

#include "op/broker/broker.hpp"
#include "op/runtime/process.hpp"

int main(int argc, char** argv) {
    op::broker::BrokerConfig config;
    std::string log_level = "info";
    std::uint64_t segment_mib = config.segment_bytes >> 20;

    CLI::App app{"The order pipeline's broker: validates, numbers and durably logs every event, "
                 "acknowledges publishers once an event is fdatasynced, fans events out live and "
                 "replays the log from any seq."};
    app.add_option("--data-dir", config.data_dir,
                   "directory for runtime state; the log goes in DATA_DIR/broker/log")
        ->capture_default_str();
    op::runtime::add_endpoint_flags(app, config.endpoints, true);
    app.add_option("--segment-mib", segment_mib, "size at which a log segment file rolls, MiB")
        ->capture_default_str()
        ->check(CLI::Range(1, 4096));
    op::runtime::add_log_level_flag(app, log_level);
    CLI11_PARSE(app, argc, argv);
    config.segment_bytes = segment_mib << 20;

    op::runtime::setup_logging("broker", log_level);
    const auto& stop = op::runtime::install_stop_signals();
    try {
        op::broker::Broker broker(config);
        broker.run(stop);
    } catch (const std::exception& e) {
        spdlog::critical("broker failed: {}", e.what());
        return 1;
    }
    return 0;
}

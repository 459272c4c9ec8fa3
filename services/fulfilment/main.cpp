// fulfilment-service: ships orders whose stock is reserved.
#include <spdlog/spdlog.h>

#include "fulfilment_service.hpp"
#include "op/runtime/process.hpp"
#include "op/service/runner.hpp"

int main(int argc, char** argv) {
    std::filesystem::path data_dir = "var";
    op::bus::Endpoints endpoints;
    std::string log_level = "info";

    CLI::App app{"Fulfilment service: packs and ships every order whose stock is reserved "
                 "(simulated: assigns a tracking id and publishes Shipped)."};
    app.add_option("--data-dir", data_dir, "directory for runtime state (fulfilment.db goes here)")
        ->capture_default_str();
    op::runtime::add_endpoint_flags(app, endpoints, false);
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "fulfilment", "DATA_DIR/keys");
    op::runtime::add_log_level_flag(app, log_level);
    CLI11_PARSE(app, argc, argv);

    op::runtime::setup_logging("fulfilment", log_level);
    const auto& stop = op::runtime::install_stop_signals();
    try {
        endpoints.curve = op::runtime::load_client_keys(security, data_dir / "keys");
        std::filesystem::create_directories(data_dir);
        op::store::Db db(data_dir / "fulfilment.db");
        op::fulfilment::FulfilmentService service(db);
        op::service::run_handler_loop(
            db, {"fulfilment", endpoints, op::fulfilment::FulfilmentService::topics()},
            [&](const auto& event, const auto& now) { return service.handle(event, now); }, stop);
    } catch (const std::exception& e) {
        spdlog::critical("fulfilment service failed: {}", e.what());
        return 1;
    }
    return 0;
}

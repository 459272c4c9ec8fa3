// payment-service: charges orders and refunds them when stock runs out.
#include <spdlog/spdlog.h>

#include "op/events/money.hpp"
#include "op/runtime/process.hpp"
#include "op/service/runner.hpp"
#include "payment_service.hpp"

int main(int argc, char** argv) {
    std::filesystem::path data_dir = "var";
    op::bus::Endpoints endpoints;
    std::string log_level = "info";
    std::string limit = "5000";

    CLI::App app{"Payment service: verifies the payment of every placed order (failing with "
                 "\"Insufficient funds\" above the limit) and refunds orders that inventory "
                 "could not serve."};
    app.add_option("--data-dir", data_dir, "directory for runtime state (payment.db goes here)")
        ->capture_default_str();
    op::runtime::add_endpoint_flags(app, endpoints, false);
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "payment", "DATA_DIR/keys");
    app.add_option("--limit", limit,
                   "largest amount that passes, in currency units with at most two decimals")
        ->capture_default_str();
    op::runtime::add_log_level_flag(app, log_level);
    CLI11_PARSE(app, argc, argv);

    op::runtime::setup_logging("payment", log_level);
    const auto limit_cents = op::events::parse_amount(limit);
    if (!limit_cents.cents) {
        spdlog::critical("--limit {} {}; give an amount like 5000 or 4999.99", limit,
                         limit_cents.error);
        return 2;
    }
    const auto& stop = op::runtime::install_stop_signals();
    try {
        endpoints.curve = op::runtime::load_client_keys(security, data_dir / "keys");
        std::filesystem::create_directories(data_dir);
        op::store::Db db(data_dir / "payment.db");
        op::payment::PaymentService service(db, {*limit_cents.cents});
        op::service::run_handler_loop(
            db, {"payment", endpoints, op::payment::PaymentService::topics()},
            [&](const auto& event, const auto& now) { return service.handle(event, now); }, stop);
    } catch (const std::exception& e) {
        spdlog::critical("payment service failed: {}", e.what());
        return 1;
    }
    return 0;
}

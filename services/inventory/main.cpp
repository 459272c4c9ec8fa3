// inventory-service: reserves stock for paid orders.
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "inventory_service.hpp"
#include "op/runtime/process.hpp"
#include "op/service/runner.hpp"

int main(int argc, char** argv) {
    std::filesystem::path data_dir = "var";
    std::filesystem::path initial_stock = "data/inventory.json";
    op::bus::Endpoints endpoints;
    std::string log_level = "info";

    CLI::App app{"Inventory service: reserves the ordered quantity for every paid order, or "
                 "reports OutOfStock (\"Item out of stock\", or \"Unknown item\")."};
    app.add_option("--data-dir", data_dir, "directory for runtime state (inventory.db goes here)")
        ->capture_default_str();
    op::runtime::add_endpoint_flags(app, endpoints, false);
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "inventory", "DATA_DIR/keys");
    app.add_option("--initial-stock", initial_stock,
                   "JSON file of item -> count, used only when the data dir has no stock yet")
        ->capture_default_str();
    op::runtime::add_log_level_flag(app, log_level);
    CLI11_PARSE(app, argc, argv);

    op::runtime::setup_logging("inventory", log_level);
    const auto& stop = op::runtime::install_stop_signals();
    try {
        endpoints.curve = op::runtime::load_client_keys(security, data_dir / "keys");
        std::filesystem::create_directories(data_dir);
        op::store::Db db(data_dir / "inventory.db");
        op::inventory::InventoryService service(db);

        std::ifstream in(initial_stock);
        if (!in) {
            spdlog::critical("cannot read the initial stock file {}: give one with "
                             "--initial-stock",
                             initial_stock.string());
            return 2;
        }
        std::stringstream text;
        text << in.rdbuf();
        const auto initial = op::inventory::parse_initial_stock(text.str());
        if (!initial.error.empty()) {
            spdlog::critical("initial stock file {} {}", initial_stock.string(), initial.error);
            return 2;
        }
        if (service.seed(initial.items)) {
            spdlog::info("stock seeded from {} ({} items)", initial_stock.string(),
                         initial.items.size());
        }
        op::service::run_handler_loop(
            db, {"inventory", endpoints, op::inventory::InventoryService::topics()},
            [&](const auto& event, const auto& now) { return service.handle(event, now); }, stop);
    } catch (const std::exception& e) {
        spdlog::critical("inventory service failed: {}", e.what());
        return 1;
    }
    return 0;
}

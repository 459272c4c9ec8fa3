// order-service: HTTP ingress and the order read model.
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "inventory_service.hpp"
#include "op/runtime/process.hpp"
#include "order_app.hpp"

int main(int argc, char** argv) {
    op::order::OrderAppConfig config;
    std::string log_level = "info";
    std::filesystem::path initial_stock = "data/inventory.json";
    int decision_timeout_ms = static_cast<int>(config.decision_timeout.count());
    int stall_after_ms = static_cast<int>(config.stall_after.count());
    int request_timeout_ms = static_cast<int>(config.request_timeout.count());

    CLI::App app{"Order service: takes orders over HTTP (POST /place-order waits for the outcome, "
                 "POST /orders answers at once), publishes OrderPlaced, and keeps the read model "
                 "behind GET /orders, GET /orders/{id} and GET /inventory."};
    app.add_option("--host", config.host, "address to listen on")->capture_default_str();
    app.add_option("--port", config.port, "HTTP port (0 picks a free one)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    app.add_option("--data-dir", config.data_dir, "directory for runtime state (order.db)")
        ->capture_default_str();
    op::runtime::add_endpoint_flags(app, config.endpoints, false);
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "order", "DATA_DIR/keys");
    app.add_option("--decision-timeout-ms", decision_timeout_ms,
                   "how long POST /place-order waits for the outcome before answering 202 pending")
        ->capture_default_str()
        ->check(CLI::Range(1, 600000));
    app.add_option("--stall-after-ms", stall_after_ms,
                   "an unfinished order with no new event for this long is reported as stalled "
                   "(GET /orders?status=stalled, and \"stalled\" in GET /orders/{id})")
        ->capture_default_str()
        ->check(CLI::Range(1, 86400000));
    app.add_option("--initial-stock", initial_stock,
                   "JSON file of item -> count: the stock GET /inventory shows before any order")
        ->capture_default_str();
    app.add_option("--max-body-bytes", config.max_body_bytes,
                   "largest request body accepted (larger ones get 413)")
        ->capture_default_str();
    app.add_option("--query-threads", config.query_threads,
                   "threads that answer from the read model: GET /orders, /orders/{id}, "
                   "/inventory, and the lookup of an Idempotency-Key (the HTTP loop itself "
                   "never waits for the database)")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    app.add_option("--max-connections", config.max_connections,
                   "open HTTP connections at most; a client past it is disconnected at once "
                   "(and logged)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    app.add_option("--max-sync-waits", config.max_sync_waits,
                   "most POST /place-order requests waiting for their outcome at once; more are "
                   "answered 503 with Retry-After, placing nothing")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    app.add_option("--request-timeout-ms", request_timeout_ms,
                   "a client must send a whole request (headers and body) within this of its "
                   "first byte, or the connection is cut (a slowloris client); waiting for the "
                   "outcome and idle keep-alive are not counted")
        ->capture_default_str()
        ->check(CLI::Range(100, 600000));
    op::runtime::add_log_level_flag(app, log_level);
    CLI11_PARSE(app, argc, argv);
    config.decision_timeout = std::chrono::milliseconds(decision_timeout_ms);
    config.stall_after = std::chrono::milliseconds(stall_after_ms);
    config.request_timeout = std::chrono::milliseconds(request_timeout_ms);

    op::runtime::setup_logging("order", log_level);
    // A descriptor per connection, and some for the database, the bus and the listener.
    const std::size_t wanted_files = config.max_connections + 256;
    if (const auto allowed = op::runtime::raise_open_file_limit(wanted_files);
        allowed < wanted_files) {
        spdlog::warn("only {} open files are allowed (ulimit -n), fewer than --max-connections {} "
                     "needs: connections past about {} wait in the backlog; raise the hard limit "
                     "or lower --max-connections",
                     allowed, config.max_connections, allowed > 256 ? allowed - 256 : 0);
    }
    const auto& stop = op::runtime::install_stop_signals();
    try {
        config.endpoints.curve = op::runtime::load_client_keys(security, config.data_dir / "keys");
        std::ifstream in(initial_stock);
        if (in) {
            std::stringstream text;
            text << in.rdbuf();
            auto parsed = op::inventory::parse_initial_stock(text.str());
            if (!parsed.error.empty()) {
                spdlog::critical("initial stock file {} {}", initial_stock.string(), parsed.error);
                return 2;
            }
            config.initial_stock = std::move(parsed.items);
        } else {
            spdlog::warn("no initial stock file at {}: GET /inventory shows only items seen in "
                         "events",
                         initial_stock.string());
        }
        op::order::OrderApp order_app(config);
        order_app.run(stop);
    } catch (const std::exception& e) {
        spdlog::critical("order service failed: {}", e.what());
        return 1;
    }
    return 0;
}

// notification-service: tells customers the outcome of their orders.
#include <fstream>

#include <spdlog/spdlog.h>

#include "notification_service.hpp"
#include "op/runtime/process.hpp"
#include "op/service/runner.hpp"

int main(int argc, char** argv) {
    std::filesystem::path data_dir = "var";
    op::bus::Endpoints endpoints;
    std::string log_level = "info";

    CLI::App app{"Notification service: tells each customer how their order ended (a log line "
                 "and a line in DATA_DIR/notifications.ndjson) and publishes CustomerNotified."};
    app.add_option("--data-dir", data_dir,
                   "directory for runtime state (notification.db and notifications.ndjson)")
        ->capture_default_str();
    op::runtime::add_endpoint_flags(app, endpoints, false);
    op::runtime::SecurityFlags security;
    op::runtime::add_security_flags(app, security, "notification", "DATA_DIR/keys");
    op::runtime::add_log_level_flag(app, log_level);
    CLI11_PARSE(app, argc, argv);

    op::runtime::setup_logging("notification", log_level);
    const auto& stop = op::runtime::install_stop_signals();
    try {
        endpoints.curve = op::runtime::load_client_keys(security, data_dir / "keys");
        std::filesystem::create_directories(data_dir);
        op::store::Db db(data_dir / "notification.db");
        op::notification::NotificationService service(db);
        const auto outbox_path = data_dir / "notifications.ndjson";
        std::ofstream outbox(outbox_path, std::ios::app);
        if (!outbox) {
            spdlog::critical("cannot open {} for appending", outbox_path.string());
            return 2;
        }
        // The outbox is written after the broker acknowledged CustomerNotified and before
        // the checkpoint commits: a crash in between repeats a line, never loses one.
        auto write_outbox = [&](const std::vector<op::events::Event>& published) {
            for (const auto& e : published) {
                const auto* n = e.as<op::events::CustomerNotified>();
                if (n == nullptr) continue;
                spdlog::info("order {}: told {} the order {}{}", e.order_id,
                             n->customer.empty() ? "the customer" : n->customer,
                             n->outcome == "success" ? "succeeded" : "failed: ", n->reason);
                outbox << op::notification::NotificationService::outbox_line(e) << '\n';
            }
            outbox.flush();
        };
        op::service::run_handler_loop(
            db, {"notification", endpoints, op::notification::NotificationService::topics()},
            [&](const auto& event, const auto& now) { return service.handle(event, now); }, stop,
            write_outbox);
    } catch (const std::exception& e) {
        spdlog::critical("notification service failed: {}", e.what());
        return 1;
    }
    return 0;
}

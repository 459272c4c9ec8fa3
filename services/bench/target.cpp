#include "target.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "support/harness.hpp"
#include "support/inspect.hpp"

namespace op::bench {

Target::Target(const TargetOptions& options) {
    if (!options.url.empty()) {
        static const std::regex kUrl(R"(^http://([^/:]+):(\d+)/?$)");
        std::smatch m;
        if (!std::regex_match(options.url, m, kUrl)) {
            throw std::invalid_argument("--url must look like http://HOST:PORT (got '" +
                                        options.url + "')");
        }
        host_ = m[1];
        port_ = std::stoi(m[2]);
        endpoints_ = options.endpoints;
        return;
    }
    test::SystemOptions so;
    so.initial_stock_json = fmt::format(R"({{"phone": {0}, "laptop": {0}}})", options.stock);
    // The log level stays the default (info, one line per event handled), as `make run` runs
    // it: the harness also waits for info lines to know a program is ready.
    if (options.max_sync_waits > 0) {
        so.extra_args["order"] = {"--max-sync-waits", std::to_string(options.max_sync_waits)};
    }
    system_ = std::make_unique<test::System>(so);
    system_->start_all();
    port_ = system_->order_port();
    endpoints_ = system_->client("operator");
}

Target::~Target() = default;

std::string Target::describe() const {
    if (system_) {
        return fmt::format("self-started system on port {} (data dir {})", port_,
                           system_->data_dir().string());
    }
    return fmt::format("existing system at http://{}:{}", host_, port_);
}

std::vector<WatchedProcess> Target::processes() const {
    std::vector<WatchedProcess> out;
    if (system_) {
        for (const auto& name : test::System::names()) {
            out.push_back({name, system_->process(name).pid()});
        }
    }
    out.push_back({"bench", ::getpid()});
    return out;
}

std::optional<std::int64_t> Target::stock(const std::string& item) const {
    if (system_) {
        return test::try_query_int(system_->data_dir() / "inventory.db",
                                   "SELECT available FROM stock WHERE item = '" + item + "'");
    }
    httplib::Client client(host_, port_);
    client.set_connection_timeout(std::chrono::seconds(2));
    for (int offset = 0;; offset += 100) {
        auto res = client.Get(fmt::format("/inventory?limit=100&offset={}", offset).c_str());
        if (!res || res->status != 200) return std::nullopt;
        const auto body = nlohmann::json::parse(res->body, nullptr, false);
        if (!body.is_object() || !body["items"].is_array() || body["items"].empty()) {
            return std::nullopt;
        }
        for (const auto& i : body["items"]) {
            if (i.value("item", "") == item) return i.value("available", std::int64_t{0});
        }
    }
}

}  // namespace op::bench

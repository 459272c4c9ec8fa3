// The original Flask system (../shared/seed_flask), started with its own start.sh on five
// consecutive free ports in a temporary directory, so bench can drive it with the same load
// as ours. Afterwards its JSON files say what its answers could not: whether the orders it
// confirmed were kept and whether the stock it took matches them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "proc_stats.hpp"
#include "support/harness.hpp"

namespace op::bench {

// What the original's files hold after a run.
struct OriginalAudit {
    bool orders_file_valid = false;  // orders.json still parses
    std::uint64_t orders_recorded = 0;
    std::optional<std::int64_t> stock_taken;  // phone stock consumed (nullopt: file corrupt)
    std::uint64_t lost = 0;  // confirmed "success" answers with no entry in orders.json
    std::string summary;
};

class OriginalSystem {
public:
    // Throws with what to do when python3-flask / python3-requests are missing or it does
    // not come up.
    OriginalSystem(const std::filesystem::path& seed_dir, std::int64_t stock);
    ~OriginalSystem();
    OriginalSystem(const OriginalSystem&) = delete;
    OriginalSystem& operator=(const OriginalSystem&) = delete;

    int port() const { return base_port_; }
    std::vector<WatchedProcess> processes() const;
    // Reads orders.json and inventory.json; `successes` is how many answers said success.
    OriginalAudit audit(std::uint64_t successes) const;

private:
    void stop() noexcept;
    test::TempDir dir_;
    std::int64_t stock_;
    int base_port_ = 0;
    std::vector<pid_t> pids_;
};

// Where the original lives by default: ../shared/seed_flask from the repository.
std::filesystem::path default_seed_dir();

nlohmann::json to_json(const OriginalAudit& a);

}  // namespace op::bench

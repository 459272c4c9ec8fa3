// One load run against our system, checked afterwards: the HTTP figures, the chain read back
// from the log, stock conservation, and each process's CPU and memory over the run.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "http_load.hpp"
#include "log_check.hpp"
#include "proc_stats.hpp"
#include "target.hpp"

namespace op::bench {

struct SystemRun {
    LoadResult load;
    ChainReport chain;
    std::optional<std::int64_t> stock_before;
    std::optional<std::int64_t> stock_after;
    bool stock_conserved = false;
    std::vector<ProcUsage> usage;
    std::vector<std::string> problems;  // what the checks found wrong (empty: all good)
    bool ok() const { return problems.empty(); }
};

// Runs `options` (its host/port are taken from `target`) and checks it; the check waits up
// to `check_deadline` for the last orders to finish.
SystemRun run_against(const Target& target, LoadOptions options,
                      std::chrono::milliseconds check_deadline = std::chrono::seconds(60));

nlohmann::json to_json(const SystemRun& r);

}  // namespace op::bench

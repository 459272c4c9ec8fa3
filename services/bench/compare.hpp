// Side by side with the original Flask system: the same load (same body, same connections,
// same duration) against a fresh original and then against ours, on the same machine in the
// same run. The original's failures are counted as what they are: error answers, and orders it
// confirmed but did not keep.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <vector>

#include "original.hpp"
#include "system_run.hpp"

namespace op::bench {

struct CompareRun {
    int connections = 0;
    LoadResult original;
    OriginalAudit audit;
    std::vector<ProcUsage> original_usage;
    SystemRun ours;
};

CompareRun compare_once(const Target& ours, const std::filesystem::path& original_dir,
                        const LoadOptions& load);

// One table, a row per connection count: medians over the runs given for it.
void print_comparison(std::ostream& out,
                      const std::vector<std::vector<CompareRun>>& by_connections);

nlohmann::json to_json(const CompareRun& r);

}  // namespace op::bench

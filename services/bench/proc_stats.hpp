// Resident memory and CPU time of a process, from /proc. A run samples every process before
// and after its load, and reports the CPU each spent in between and its RSS at the end.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace op::bench {

struct ProcSample {
    double cpu_s = 0;       // user + system, since the process started
    long rss_kib = 0;       // VmRSS
    long peak_rss_kib = 0;  // VmHWM
};

// nullopt if the process is gone (or /proc is unreadable).
std::optional<ProcSample> sample_process(pid_t pid);

// A named process to watch, e.g. {"broker", 1234}; "bench" is this process.
struct WatchedProcess {
    std::string name;
    pid_t pid = 0;
};

struct ProcUsage {
    std::string name;
    pid_t pid = 0;
    double cpu_s = 0;    // CPU time spent between begin() and end()
    double cpu_pct = 0;  // of one core, over the same wall time
    long rss_kib = 0;
    long peak_rss_kib = 0;
};

// Samples each process at begin() and end(); processes that vanished are reported with 0.
class ProcWatch {
public:
    explicit ProcWatch(std::vector<WatchedProcess> processes);
    void begin();
    std::vector<ProcUsage> end(double wall_s);

private:
    std::vector<WatchedProcess> processes_;
    std::vector<std::optional<ProcSample>> start_;
};

nlohmann::json to_json(const std::vector<ProcUsage>& usage);

}  // namespace op::bench

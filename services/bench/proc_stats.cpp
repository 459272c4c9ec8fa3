#include "proc_stats.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace op::bench {

std::optional<ProcSample> sample_process(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream stat(dir + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return std::nullopt;
    // The command name (field 2) may hold spaces and parentheses: fields are counted from
    // the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    // After ')' come state (3), ppid (4) ... utime (14), stime (15).
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    ProcSample s;
    s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    std::ifstream status(dir + "/status");
    while (std::getline(status, line)) {
        auto value = [&] { return std::stol(line.substr(line.find(':') + 1)); };
        if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = value();
        if (line.rfind("VmHWM:", 0) == 0) s.peak_rss_kib = value();
    }
    return s;
}

ProcWatch::ProcWatch(std::vector<WatchedProcess> processes) : processes_(std::move(processes)) {}

void ProcWatch::begin() {
    start_.clear();
    for (const auto& p : processes_) start_.push_back(sample_process(p.pid));
}

std::vector<ProcUsage> ProcWatch::end(double wall_s) {
    std::vector<ProcUsage> out;
    for (std::size_t i = 0; i < processes_.size(); ++i) {
        ProcUsage u{processes_[i].name, processes_[i].pid};
        const auto now = sample_process(processes_[i].pid);
        if (now && i < start_.size() && start_[i]) {
            u.cpu_s = now->cpu_s - start_[i]->cpu_s;
            u.cpu_pct = wall_s > 0 ? 100.0 * u.cpu_s / wall_s : 0;
            u.rss_kib = now->rss_kib;
            u.peak_rss_kib = now->peak_rss_kib;
        }
        out.push_back(u);
    }
    return out;
}

nlohmann::json to_json(const std::vector<ProcUsage>& usage) {
    auto out = nlohmann::json::array();
    for (const auto& u : usage) {
        out.push_back({{"name", u.name},
                       {"pid", u.pid},
                       {"cpu_s", u.cpu_s},
                       {"cpu_pct", u.cpu_pct},
                       {"rss_kib", u.rss_kib},
                       {"peak_rss_kib", u.peak_rss_kib}});
    }
    return out;
}

}  // namespace op::bench

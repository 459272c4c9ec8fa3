#include "machine.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/utsname.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace op::bench {

MachineInfo describe_machine() {
    MachineInfo m;
    m.cores = std::thread::hardware_concurrency();
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            m.cpu_model = line.substr(line.find(':') + 2);
            break;
        }
    }
    utsname u{};
    if (::uname(&u) == 0) m.kernel = fmt::format("{} {} {}", u.sysname, u.release, u.machine);
    std::ifstream loadavg("/proc/loadavg");
    std::getline(loadavg, m.load_average);
    m.started_utc = fmt::format(
        "{:%Y-%m-%d %H:%M:%S} UTC",
        fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
    return m;
}

nlohmann::json to_json(const MachineInfo& m) {
    return {{"cores", m.cores},
            {"cpu_model", m.cpu_model},
            {"kernel", m.kernel},
            {"load_average_at_start", m.load_average},
            {"started_utc", m.started_utc}};
}

std::string to_string(const MachineInfo& m) {
    return fmt::format("machine: {} cores, {}, {}; load average at start {}; {}", m.cores,
                       m.cpu_model, m.kernel, m.load_average, m.started_utc);
}

}  // namespace op::bench

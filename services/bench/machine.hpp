// What the machine was while bench ran: the figures mean little without it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace op::bench {

struct MachineInfo {
    unsigned cores = 0;
    std::string cpu_model;
    std::string kernel;
    std::string load_average;  // /proc/loadavg at the start: other work on the machine
    std::string started_utc;
};

MachineInfo describe_machine();
nlohmann::json to_json(const MachineInfo& m);
std::string to_string(const MachineInfo& m);

}  // namespace op::bench

// Where the broker listens, as every process is told on its command line.
#pragma once

#include <string>

namespace op::bus {

struct Endpoints {
    std::string publish = "tcp://127.0.0.1:5555";
    std::string live = "tcp://127.0.0.1:5556";
    std::string replay = "tcp://127.0.0.1:5557";
};

}  // namespace op::bus

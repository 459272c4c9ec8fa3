// An order's outcome as /place-order answers it: success, or failed with the reason.
#pragma once

#include <string>

namespace op::order {

struct Decision {
    bool failed = false;
    std::string reason;  // why it failed; empty on success

    bool operator==(const Decision&) const = default;
};

}  // namespace op::order

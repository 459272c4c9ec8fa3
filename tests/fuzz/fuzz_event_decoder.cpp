// Fuzz target: the event decoder, which every process runs on bytes from the network and the
// log. Any input must decode or be refused with a reason, never crash; what decodes must
// encode to a form that decodes to the same encoding (no field lost or invented).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "op/events/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto decoded = op::events::decode(text);
    if (!decoded) {
        if (decoded.error.empty()) std::abort();  // a refusal always says why
        return 0;
    }
    const std::string once = op::events::encode(*decoded.event);
    const auto again = op::events::decode(once);
    if (!again || op::events::encode(*again.event) != once) std::abort();
    return 0;
}

// Fuzz target: the event decoder, which every process runs on bytes from the network and the
// log. Any input must decode or be refused with a reason, never crash; what decodes must
// encode to a form that decodes to the same encoding (no field lost or invented); and where
// decode's fast path answers, nlohmann's parser must answer the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "op/events/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (const auto plain = op::events::detail::decode_plain(text)) {
        const auto full = op::events::detail::decode_with_nlohmann(text);
        if (plain->event.has_value() != full.event.has_value()) std::abort();
        if (full.event ? op::events::encode(*plain->event) != op::events::encode(*full.event)
                       : plain->error != full.error) {
            std::abort();
        }
    }
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

// JSON encoding of events, and validation of untrusted bytes. decode() never throws: a
// malformed event comes back as an error naming the field and what is wrong with it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "op/events/event.hpp"

namespace op::events {

struct Decoded {
    std::optional<Event> event;
    std::string error;  // set when event is empty

    explicit operator bool() const { return event.has_value(); }
};

std::string encode(const Event& event);
nlohmann::json to_json(const Event& event);

Decoded decode(std::string_view text);
Decoded from_json(const nlohmann::json& json);

// decode()'s two paths, for the tests and the fuzzer that check they agree. decode_plain is
// the fast one: it answers only for the plain shape our encoder writes (nullopt otherwise);
// decode_with_nlohmann reads any JSON.
namespace detail {
std::optional<Decoded> decode_plain(std::string_view text);
Decoded decode_with_nlohmann(std::string_view text);
}  // namespace detail

}  // namespace op::events

// The fast path of decode(): a scanner for the plain shape every event our encoder writes has,
// and nearly every event on the bus is. An object of string and integer members, with nested
// objects one level deep (the payload). It builds no document: members are views into the
// text.
//
// Why: nlohmann's parser took ~2.9 us per event, ~2 of it lexing one character at a time.
// Every process decodes every event it receives (the broker each one published, the order
// read model all of them), ~14 decodes per order. This scanner takes a fraction of that.
//
// It never decides anything on its own. Whatever it is not certain to read exactly as
// nlohmann would (an escape, a byte over 0x7F, a float, true/false/null, an array, deeper
// nesting, a repeated key, anything malformed) makes it answer nullopt, and decode() hands the
// text to nlohmann, which then accepts it or says what is wrong. Both paths feed the same field
// reader, so what an event means and how it is validated is written once; the unit tests and
// the fuzzer check that the two paths agree.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace op::events::flat {

struct Object;

struct Value {
    enum class Kind { String, Integer, Object };
    Kind kind = Kind::String;
    std::string_view text;        // String: the characters between the quotes (no escapes)
    bool negative = false;        // Integer: written with a '-' (nlohmann: number_integer)
    std::uint64_t magnitude = 0;  // Integer: at most 18 digits, so it fits either way
    const Object* object = nullptr;  // Object
};

struct Object {
    std::vector<std::pair<std::string_view, Value>> members;

    [[nodiscard]] const Value* find(std::string_view name) const {
        for (const auto& [key, value] : members) {
            if (key == name) return &value;
        }
        return nullptr;
    }
};

// The top-level object and the objects nested in it, which Values point into (so a Document
// must not be copied or moved once scanned).
struct Document {
    Object top;
    std::vector<Object> nested;  // reserved before scanning: pointers stay valid
};

// Scans `text` into `doc` if it has the plain shape; false if not (then nothing is decided).
bool scan(std::string_view text, Document& doc);

}  // namespace op::events::flat

#include "flat_json.hpp"

namespace op::events::flat {
namespace {

// Nested objects an event may have: the payload, with room for a few unknown ones.
constexpr std::size_t kMaxNested = 4;
constexpr int kMaxDigits = 18;
// Members an event's objects hold: the envelope at most 8, a payload fewer. Reserved once, so
// the scan does not grow each vector through 1, 2, 4, 8 (an allocation each, every decode).
constexpr std::size_t kUsualMembers = 8;

class Scanner {
public:
    Scanner(std::string_view text, Document& doc)
        : p_(text.data()), end_(p_ + text.size()), doc_(doc) {}

    bool document() {
        doc_.top.members.clear();
        doc_.top.members.reserve(kUsualMembers);
        doc_.nested.clear();
        doc_.nested.reserve(kMaxNested);
        skip_space();
        if (!object(doc_.top, true)) return false;
        skip_space();
        return p_ == end_;
    }

private:
    void skip_space() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    bool consume(char c) {
        skip_space();
        if (p_ == end_ || *p_ != c) return false;
        ++p_;
        return true;
    }

    // A string of printable ASCII without escapes; anything else is left to nlohmann.
    bool string(std::string_view& out) {
        if (p_ == end_ || *p_ != '"') return false;
        const char* start = ++p_;
        while (p_ < end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out = std::string_view(start, static_cast<std::size_t>(p_ - start));
                ++p_;
                return true;
            }
            if (c < 0x20 || c >= 0x80 || c == '\\') return false;
            ++p_;
        }
        return false;
    }

    // An integer as JSON writes one: -?(0|[1-9][0-9]*), not followed by a fraction or an
    // exponent (a float is nlohmann's to read), at most 18 digits.
    bool integer(Value& v) {
        v.kind = Value::Kind::Integer;
        v.negative = p_ < end_ && *p_ == '-';
        if (v.negative) ++p_;
        const char* start = p_;
        std::uint64_t n = 0;
        while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
            n = n * 10 + static_cast<std::uint64_t>(*p_ - '0');
            ++p_;
        }
        const auto digits = p_ - start;
        if (digits == 0 || digits > kMaxDigits) return false;
        if (*start == '0' && digits > 1) return false;
        if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
        v.magnitude = n;
        return true;
    }

    bool object(Object& into, bool top) {
        if (!consume('{')) return false;
        skip_space();
        if (p_ < end_ && *p_ == '}') {
            ++p_;
            return true;
        }
        for (;;) {
            skip_space();
            std::string_view key;
            if (!string(key)) return false;
            // nlohmann keeps the last of repeated keys; the fast path does not guess.
            if (into.find(key) != nullptr) return false;
            if (!consume(':')) return false;
            skip_space();
            if (p_ == end_) return false;
            Value value;
            if (*p_ == '"') {
                if (!string(value.text)) return false;
            } else if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) {
                if (!integer(value)) return false;
            } else if (*p_ == '{' && top && doc_.nested.size() < kMaxNested) {
                doc_.nested.emplace_back();
                Object& nested = doc_.nested.back();
                nested.members.reserve(kUsualMembers);
                if (!object(nested, false)) return false;
                value.kind = Value::Kind::Object;
                value.object = &nested;
            } else {
                return false;  // true, false, null, an array, deeper nesting
            }
            into.members.emplace_back(key, value);
            skip_space();
            if (p_ == end_) return false;
            if (*p_ == ',') {
                ++p_;
                continue;
            }
            if (*p_ == '}') {
                ++p_;
                return true;
            }
            return false;
        }
    }

    const char* p_;
    const char* end_;
    Document& doc_;
};

}  // namespace

bool scan(std::string_view text, Document& doc) { return Scanner(text, doc).document(); }

}  // namespace op::events::flat

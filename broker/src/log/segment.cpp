#include "segment.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace op::log::detail {
namespace {
constexpr std::size_t kDigits = 20;
constexpr std::string_view kSuffix = ".seg";
}  // namespace

IndexEntry Segment::seek_hint(std::uint64_t seq) const noexcept {
    const auto it =
        std::upper_bound(index.begin(), index.end(), seq,
                         [](std::uint64_t s, const IndexEntry& e) { return s < e.seq; });
    if (it == index.begin()) return IndexEntry{base_seq, 0};
    return *std::prev(it);
}

std::string segment_file_name(std::uint64_t base_seq) {
    char name[kDigits + kSuffix.size() + 1];
    std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(base_seq));
    return name;
}

std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) {
    if (name.size() != kDigits + kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
    std::uint64_t value = 0;
    const char* digits_end = name.data() + kDigits;
    const auto [ptr, ec] = std::from_chars(name.data(), digits_end, value);
    if (ec != std::errc{} || ptr != digits_end) return std::nullopt;
    return value;
}

}  // namespace op::log::detail

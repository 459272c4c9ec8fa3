// Unit tests of the batch frame records (op/bus/batch_records.hpp): what one side writes the
// other reads back, and a damaged frame stops at the damage rather than inventing messages.
#include "op/bus/batch_records.hpp"
#include "op/bus/protocol.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace {

using Records = std::vector<std::pair<std::string, std::string>>;

std::pair<bool, Records> parse(std::string_view frame) {
    Records out;
    const bool whole = op::bus::parse_records(
        frame, [&](std::string_view topic, std::string_view json) {
            out.emplace_back(std::string(topic), std::string(json));
        });
    return {whole, out};
}

}  // namespace

TEST_CASE("batch records: records come back in order, bytes intact, newlines and spaces included") {
    const Records sent = {{"OrderPlaced", R"({"id":"a","note":"two words"})"},
                          {"PaymentVerified", "{\"id\":\"b\",\"x\":\"line\\nbreak\"}"},
                          {"Shipped", std::string("{\"raw\":\"\n \"}")}};
    std::string frame;
    for (const auto& [topic, json] : sent) op::bus::append_record(frame, topic, json);
    const auto [whole, got] = parse(frame);
    CHECK(whole);
    CHECK(got == sent);
}

TEST_CASE("batch records: an empty frame holds no records") {
    const auto [whole, got] = parse("");
    CHECK(whole);
    CHECK(got.empty());
}

TEST_CASE("batch records: a damaged record stops the parse after the good ones before it") {
    std::string good;
    op::bus::append_record(good, "OrderPlaced", R"({"id":"a"})");
    for (const std::string bad : {"Shipped 99\n{}", "Shipped x\n{}", "Shipped\n{}", " 2\n{}",
                                  "Shipped 2{}", "Shipped -1\n{}", "Shipped 2\n{"}) {
        CAPTURE(bad);
        const auto [whole, got] = parse(good + bad);
        CHECK_FALSE(whole);
        REQUIRE(got.size() == 1);
        CHECK(got[0].first == "OrderPlaced");
    }
}

TEST_CASE("batch records: count_records counts a whole frame and refuses a damaged one") {
    std::string frame;
    for (int i = 0; i < 3; ++i) op::bus::append_record(frame, std::to_string(i), "{}");
    CHECK(op::bus::count_records(frame) == 3u);
    CHECK(op::bus::count_records("") == 0u);
    CHECK_FALSE(op::bus::count_records(frame + "3 9\n{}").has_value());
}

TEST_CASE("live channel names: one fixed-width spelling per topic set, anything else refused") {
    using op::bus::protocol::channel_name;
    using op::bus::protocol::parse_channel_name;
    for (std::uint64_t mask : {std::uint64_t{1}, std::uint64_t{0x1ff}, std::uint64_t{0x104},
                               ~std::uint64_t{0}}) {
        const std::string name = channel_name(mask);
        CHECK(name.size() == 17);  // a prefix match of one name is never another name
        CHECK(name[0] == '@');
        CHECK(parse_channel_name(name) == mask);
    }
    CHECK(channel_name(0x1ff) == "@00000000000001ff");
    for (const char* bad : {"", "@", "@1ff", "@00000000000000000", "#00000000000001ff",
                            "@00000000000001FF", "@0000000000000000", "@0000000000000x1f",
                            "@00000000000001f", "@-0000000000001ff"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_channel_name(bad));
    }
}

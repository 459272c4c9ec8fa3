// Recorded logs replayed into a fresh system: same input, same outcomes; a changed rule shows.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using op::test::Process;
using op::test::read_file;
using op::test::System;
using op::test::SystemOptions;
using namespace std::chrono_literals;

namespace {

const std::string kFixture = std::string(OP_SOURCE_DIR) + "/tests/replay/mixed-600.ndjson";

SystemOptions fixture_system() {
    SystemOptions options;
    options.initial_stock_json = read_file(std::string(OP_SOURCE_DIR) + "/tests/replay/inventory.json");
    return options;
}

int run_replay(System& system, const std::filesystem::path& out,
               const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {std::string(OP_BIN_DIR) + "/replay", kFixture,
                                     "--publish", system.publish_endpoint(),
                                     "--live", system.live_endpoint(),
                                     "--replay", system.replay_endpoint(), "--timeout-s", "60"};
    argv = op::test::with_args(argv, system.security_args("replay"));
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process replay(argv, out);
    auto status = replay.wait_for(90s);
    REQUIRE_MESSAGE(status.has_value(), "replay did not finish: ", op::test::tail_file(out));
    return *status;
}

}  // namespace

TEST_CASE("the recorded 600-order log replays with identical outcomes and final stock") {
    System system(fixture_system());
    system.start_all();
    const auto out = system.data_dir() / "replay.txt";
    const int status = run_replay(system, out);
    const auto text = read_file(out);
    CHECK_MESSAGE(status == 0, op::test::tail_file(out));
    CHECK(text.find("600 orders replayed, 600 finished, 0 differences") != std::string::npos);
    CHECK(text.find("DIFFERENT") == std::string::npos);

    // Replaying into a system that already ran them is refused, not silently "identical".
    const auto again = system.data_dir() / "replay-again.txt";
    CHECK(run_replay(system, again) == 2);
    CHECK(read_file(again).find("fresh system") != std::string::npos);
}

TEST_CASE("a lowered payment limit makes the replay report the differences and fail") {
    auto options = fixture_system();
    options.payment_limit = "1000";
    System system(options);
    system.start_all();
    const auto out = system.data_dir() / "replay.txt";
    CHECK(run_replay(system, out, {"--only-differences"}) == 1);
    const auto text = read_file(out);
    CHECK(text.find("DIFFERENT") != std::string::npos);
    // Orders that succeeded with amounts above 1000 now fail for funds.
    CHECK(text.find("success                          failed: Insufficient funds") !=
          std::string::npos);
    CHECK(text.find(" 0 differences") == std::string::npos);
}

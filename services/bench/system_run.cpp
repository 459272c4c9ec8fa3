#include "system_run.hpp"

#include <fmt/format.h>

#include "support/harness.hpp"

namespace op::bench {

SystemRun run_against(const Target& target, LoadOptions options,
                      std::chrono::milliseconds check_deadline) {
    options.host = target.host();
    options.port = target.port();
    SystemRun run;
    const std::string item = options.item;  // the stock the run draws on
    const std::uint64_t from_seq = log_head(target.endpoints()) + 1;
    run.stock_before = target.stock(item);
    ProcWatch watch(target.processes());
    watch.begin();
    run.load = run_http_load(options);
    run.usage = watch.end(run.load.wall_s);
    run.chain = check_chain(target.endpoints(), from_seq, run.load.answers, check_deadline);
    run.load.answers.clear();
    run.load.answers.shrink_to_fit();

    run.problems = run.chain.problems;
    if (run.chain.disagreements > 0) {
        run.problems.push_back(
            fmt::format("{} answers disagree with the log", run.chain.disagreements));
    }
    // Stock is conserved when what left the shelf is exactly what the log reserved, and every
    // reservation belongs to an order the customer was told succeeded.
    const std::int64_t reserved =
        run.chain.reserved.contains(item) ? run.chain.reserved.at(item) : 0;
    // An existing system's stock comes from the order service's read model, which may apply
    // the last reservations a moment after the log holds them.
    test::poll_until(std::chrono::milliseconds(5000), [&] {
        run.stock_after = target.stock(item);
        return run.stock_before && run.stock_after &&
               *run.stock_before - *run.stock_after == reserved;
    });
    if (run.stock_before && run.stock_after) {
        const std::int64_t taken = *run.stock_before - *run.stock_after;
        run.stock_conserved =
            taken == reserved && reserved == static_cast<std::int64_t>(run.chain.succeeded);
        if (!run.stock_conserved) {
            run.problems.push_back(fmt::format(
                "stock not conserved: {} {} taken, {} reserved in the log, {} orders succeeded",
                taken, item, reserved, run.chain.succeeded));
        }
    } else {
        run.problems.push_back("stock could not be read before and after the run");
    }
    return run;
}

nlohmann::json to_json(const SystemRun& r) {
    auto j = to_json(r.load);
    j["chain"] = to_json(r.chain);
    j["stock_before"] = r.stock_before ? nlohmann::json(*r.stock_before) : nlohmann::json();
    j["stock_after"] = r.stock_after ? nlohmann::json(*r.stock_after) : nlohmann::json();
    j["stock_conserved"] = r.stock_conserved;
    j["processes"] = to_json(r.usage);
    j["problems"] = r.problems;
    j["ok"] = r.ok();
    return j;
}

}  // namespace op::bench

// How far each consumer (a service, by identity) has durably got through the log, as it
// reports with CKPT (op/bus/protocol.hpp), kept in DATA_DIR/broker/checkpoints so that a
// restarted broker still knows every consumer. Retention deletes only what all of them have
// passed. A stale file errs on the safe side: it holds older, lower seqs. Not thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace op::broker {

class Checkpoints {
public:
    // Loads the file if there is one (lines "<consumer> <seq>"); a damaged line is skipped
    // with a warning.
    explicit Checkpoints(std::filesystem::path file);

    // The consumer's latest checkpoint: it may go down (a service rebuilding its state from
    // the start of the log), and retention then waits for it again.
    void update(const std::string& consumer, std::uint64_t seq);
    // The lowest checkpoint of all consumers ever heard of; none before the first report.
    std::optional<std::uint64_t> lowest() const;
    // "inventory 120, payment 118" for log lines.
    std::string describe() const;
    // Writes the file (aside, then renamed) if anything changed since the last save.
    void save_if_changed();

private:
    std::filesystem::path file_;
    std::map<std::string, std::uint64_t> seqs_;
    bool changed_ = false;
};

}  // namespace op::broker

#include "checkpoints.hpp"

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "op/security/keys.hpp"

namespace op::broker {

Checkpoints::Checkpoints(std::filesystem::path file) : file_(std::move(file)) {
    std::ifstream in(file_);
    std::string line;
    std::size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        std::istringstream fields(line);
        std::string consumer;
        std::uint64_t seq = 0;
        if (!(fields >> consumer >> seq) || !security::is_identity_name(consumer)) {
            spdlog::warn("{} line {} is not \"<consumer> <seq>\"; skipped", file_.string(),
                         line_no);
            continue;
        }
        seqs_[consumer] = seq;
    }
}

void Checkpoints::update(const std::string& consumer, std::uint64_t seq) {
    auto [it, added] = seqs_.try_emplace(consumer, seq);
    if (added) spdlog::info("consumer \"{}\" reports checkpoints (at seq {})", consumer, seq);
    if (added || it->second != seq) changed_ = true;
    it->second = seq;
}

std::optional<std::uint64_t> Checkpoints::lowest() const {
    std::optional<std::uint64_t> low;
    for (const auto& [consumer, seq] : seqs_) low = low ? std::min(*low, seq) : seq;
    return low;
}

std::string Checkpoints::describe() const {
    std::string text;
    for (const auto& [consumer, seq] : seqs_) {
        if (!text.empty()) text += ", ";
        text += consumer + " " + std::to_string(seq);
    }
    return text;
}

void Checkpoints::save_if_changed() {
    if (!changed_) return;
    const auto temp = std::filesystem::path(file_.string() + ".tmp");
    {
        std::ofstream out(temp, std::ios::trunc);
        for (const auto& [consumer, seq] : seqs_) out << consumer << ' ' << seq << '\n';
        if (!out) {
            spdlog::warn("cannot write {}; retention keeps waiting on the last saved "
                         "checkpoints",
                         temp.string());
            return;
        }
    }
    std::error_code ec;
    std::filesystem::rename(temp, file_, ec);
    if (ec) {
        spdlog::warn("cannot rename {}: {}", temp.string(), ec.message());
        return;
    }
    changed_ = false;
}

}  // namespace op::broker

// Fuzz target: the log's record reader and tail recovery. The input is the bytes of a segment
// file; opening the log must either refuse it (LogError: corruption it will not cut) or recover
// a prefix of whole, checksummed records numbered from 1, which then read back in order. A torn
// or corrupt tail is cut, never misread.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include "op/log/segment_log.hpp"

namespace fs = std::filesystem;

namespace {

// One directory for the whole run, in memory when /dev/shm exists: the target rewrites one
// file per input.
const fs::path& work_dir() {
    static const fs::path dir = [] {
        const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
        fs::path d = base / ("op-fuzz-segment-log-" + std::to_string(::getpid()));
        fs::create_directories(d);
        return d;
    }();
    return dir;
}

}  // namespace

// Recovery logs every tail it cuts; at thousands of inputs a second that is the whole cost.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fs::path dir = work_dir() / "log";
    fs::create_directories(dir);
    for (const auto& f : fs::directory_iterator(dir)) fs::remove(f.path());
    {
        std::ofstream out(dir / "00000000000000000001.seg", std::ios::binary);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    try {
        op::log::SegmentLog log(op::log::LogOptions{dir, 1u << 20, false});
        const auto head = log.head();
        std::uint64_t expected = 1;
        log.scan(1, [&](const op::log::Record& r) {
            if (r.seq != expected++) std::abort();  // recovered records are contiguous from 1
            return true;
        });
        if (expected != head + 1) std::abort();
        // The recovered log takes appends where it ends.
        if (log.append("after") != head + 1) std::abort();
        log.sync();
        if (log.read(head + 1, 1).at(0).payload != "after") std::abort();
    } catch (const op::log::LogError&) {
        // Refused: corruption the log will not cut away. A clear error, no crash.
    }
    return 0;
}

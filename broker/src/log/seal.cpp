#include "seal.hpp"

#include <fcntl.h>

#include <cstring>
#include <string>

#include <zlib.h>

#include "file_io.hpp"
#include "op/log/segment_log.hpp"

namespace op::log::detail {
namespace {

constexpr char kMagic[8] = {'O', 'P', 'S', 'E', 'A', 'L', '0', '1'};
constexpr std::size_t kHeaderBytes = 32;  // magic, records, bytes, index entries
constexpr std::size_t kMaxIndexEntries = 1u << 20;

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
        v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    }
    return v;
}

std::uint32_t checksum(std::string_view bytes) {
    return static_cast<std::uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()),
                                            static_cast<uInt>(bytes.size())));
}

}  // namespace

std::filesystem::path seal_path(const std::filesystem::path& segment) {
    auto path = segment;
    path.replace_extension(".seal");
    return path;
}

void write_seal(const Segment& segment) {
    std::string bytes(kMagic, sizeof kMagic);
    put_u64(bytes, segment.durable_records);
    put_u64(bytes, segment.durable_bytes);
    put_u64(bytes, segment.index.size());
    for (const auto& e : segment.index) {
        put_u64(bytes, e.seq);
        put_u64(bytes, e.offset);
    }
    const std::uint32_t crc = checksum(bytes);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));

    const auto path = seal_path(segment.path);
    const auto temp = std::filesystem::path(path.string() + ".tmp");
    {
        const Fd fd = open_file(temp, O_WRONLY | O_CREAT | O_TRUNC);
        pwrite_all(fd.get(), bytes, 0, temp);
        sync_data(fd.get(), temp);
    }
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    if (ec) throw_errno("rename", temp, ec.value());
    const Fd dir = open_file(path.parent_path(), O_RDONLY | O_DIRECTORY);
    sync_all(dir.get(), path.parent_path());
}

std::optional<Seal> read_seal(const std::filesystem::path& segment) {
    const auto path = seal_path(segment);
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || size < kHeaderBytes + 4 || size > kHeaderBytes + 4 + kMaxIndexEntries * 16) {
        return std::nullopt;
    }
    std::string bytes(size, '\0');
    try {
        const Fd fd = open_file(path, O_RDONLY);
        if (pread_full(fd.get(), bytes.data(), bytes.size(), 0, path) != bytes.size()) {
            return std::nullopt;
        }
    } catch (const LogError&) {
        return std::nullopt;
    }
    if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
    const std::uint64_t entries = get_u64(bytes.data() + 24);
    if (entries > kMaxIndexEntries || size != kHeaderBytes + entries * 16 + 4) return std::nullopt;
    std::uint32_t stored = 0;
    for (int i = 0; i < 4; ++i) {
        stored |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[size - 4 + i]))
                  << (8 * i);
    }
    if (stored != checksum(std::string_view(bytes).substr(0, size - 4))) return std::nullopt;
    Seal seal;
    seal.records = get_u64(bytes.data() + 8);
    seal.bytes = get_u64(bytes.data() + 16);
    seal.index.reserve(entries);
    for (std::uint64_t i = 0; i < entries; ++i) {
        const char* p = bytes.data() + kHeaderBytes + i * 16;
        seal.index.push_back({get_u64(p), get_u64(p + 8)});
    }
    return seal;
}

}  // namespace op::log::detail

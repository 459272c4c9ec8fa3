#include "record_format.hpp"

#include <zlib.h>

namespace op::log::detail {
namespace {

// Byte-wise stores and loads make the format independent of host endianness; compilers
// turn them into single moves on little-endian machines.
void store_u32(unsigned char* out, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

void store_u64(unsigned char* out, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

std::uint32_t load_u32(const unsigned char* in) noexcept {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(in[i]) << (8 * i);
    return v;
}

std::uint64_t load_u64(const unsigned char* in) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(in[i]) << (8 * i);
    return v;
}

}  // namespace

RecordHeader decode_header(const char* in) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(in);
    return RecordHeader{load_u32(p), load_u32(p + 4), load_u64(p + 8)};
}

std::uint32_t record_crc(std::uint64_t seq, std::string_view payload) noexcept {
    unsigned char seq_bytes[8];
    store_u64(seq_bytes, seq);
    uLong crc = crc32_z(0L, Z_NULL, 0);
    crc = crc32_z(crc, seq_bytes, sizeof seq_bytes);
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(payload.data()), payload.size());
    return static_cast<std::uint32_t>(crc);
}

void append_record(std::string& out, std::uint64_t seq, std::string_view payload) {
    unsigned char header[kHeaderBytes];
    store_u32(header, static_cast<std::uint32_t>(payload.size()));
    store_u32(header + 4, record_crc(seq, payload));
    store_u64(header + 8, seq);
    out.append(reinterpret_cast<const char*>(header), kHeaderBytes);
    out.append(payload);
}

}  // namespace op::log::detail

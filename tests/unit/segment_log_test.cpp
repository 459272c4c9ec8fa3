// Unit tests of the broker's segment log against real files in a private temp directory:
// framing, group commit, segment rolling, sparse-index reads, and tail recovery.
#include "op/log/segment_log.hpp"
#include "op/runtime/failpoint.hpp"

#include <doctest/doctest.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace {

namespace fs = std::filesystem;
using op::log::LogError;
using op::log::LogOptions;
using op::log::Record;
using op::log::SegmentLog;

constexpr std::size_t kHeader = SegmentLog::kHeaderBytes;

// A fresh directory under /tmp, removed afterwards (OP_KEEP_TEST_DIRS=1 keeps it).
using op::test::TempDir;

LogOptions options_in(const TempDir& dir, std::uint64_t segment_bytes = 64ull << 20,
                      bool fsync = true) {
    return LogOptions{dir.path() / "log", segment_bytes, fsync};
}

// Distinct per seq, so a record returned for the wrong seq is caught.
std::string payload_for(std::uint64_t seq, std::size_t size = 100) {
    std::string p = "event-" + std::to_string(seq) + ":";
    while (p.size() < size) p.push_back(static_cast<char>('a' + (seq + p.size()) % 26));
    p.resize(size);
    return p;
}

void append_n(SegmentLog& log, std::uint64_t n, std::size_t size = 100) {
    for (std::uint64_t i = 0; i < n; ++i) log.append(payload_for(log.head() + 1, size));
}

void check_records(const std::vector<Record>& records, std::uint64_t first, std::uint64_t count,
                   std::size_t size = 100) {
    REQUIRE(records.size() == count);
    for (std::uint64_t i = 0; i < count; ++i) {
        CHECK(records[i].seq == first + i);
        CHECK(records[i].payload == payload_for(first + i, size));
    }
}

std::vector<fs::path> segment_files(const fs::path& dir) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() == ".seg") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void flip_byte(const fs::path& path, std::uint64_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x5a));
}

void append_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
}

// Independent bitwise CRC-32 (the zlib polynomial), to check the on-disk format without
// sharing code with the implementation.
std::uint32_t reference_crc32(const std::string& bytes) {
    std::uint32_t crc = 0xffffffffu;
    for (unsigned char b : bytes) {
        crc ^= b;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

std::uint64_t load_le(const std::string& bytes, std::size_t at, int width) {
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
        v |= std::uint64_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
    }
    return v;
}

// A seal file with the right magic (the log's own check is what recovery uses).
bool read_seal_ok(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::string magic(8, '\0');
    in.read(magic.data(), 8);
    return in && magic == "OPSEAL01" && fs::file_size(path) > 36;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("segment log: append, sync and read back") {
    TempDir dir;
    SegmentLog log(options_in(dir));
    CHECK(log.append("alpha") == 1);
    CHECK(log.append("") == 2);
    CHECK(log.append("gamma") == 3);
    log.sync();

    const auto records = log.read(1, 10);
    REQUIRE(records.size() == 3);
    CHECK(records[0].seq == 1);
    CHECK(records[0].payload == "alpha");
    CHECK(records[1].seq == 2);
    CHECK(records[1].payload.empty());
    CHECK(records[2].payload == "gamma");

    SUBCASE("on-disk framing is len | crc(seq ++ payload) | seq | payload, little-endian") {
        const auto files = segment_files(options_in(dir).dir);
        REQUIRE(files.size() == 1);
        CHECK(files[0].filename() == "00000000000000000001.seg");
        const std::string bytes = read_file(files[0]);
        // The records, then the zeros written ahead of them.
        constexpr std::size_t kRecords = 3 * kHeader + 5 + 0 + 5;
        REQUIRE(bytes.size() == kRecords + SegmentLog::kPreallocateBytes);
        CHECK(bytes.find_first_not_of('\0', kRecords) == std::string::npos);
        CHECK(load_le(bytes, 0, 4) == 5);
        CHECK(load_le(bytes, 8, 8) == 1);
        CHECK(bytes.substr(kHeader, 5) == "alpha");
        CHECK(load_le(bytes, 4, 4) == reference_crc32(bytes.substr(8, 8) + "alpha"));
    }
}

TEST_CASE("segment log: durable_head lags head until sync") {
    TempDir dir;
    SegmentLog log(options_in(dir));
    append_n(log, 3);
    CHECK(log.head() == 3);
    CHECK(log.durable_head() == 0);
    CHECK(log.read(1, 10).empty());

    log.sync();
    CHECK(log.durable_head() == 3);

    append_n(log, 2);
    CHECK(log.head() == 5);
    CHECK(log.durable_head() == 3);
    check_records(log.read(1, 10), 1, 3);

    log.sync();
    log.sync();  // nothing pending: a no-op
    CHECK(log.durable_head() == 5);
    check_records(log.read(1, 10), 1, 5);
}

TEST_CASE("segment log: reopening preserves records and head, and seqs continue") {
    TempDir dir;
    {
        SegmentLog log(options_in(dir));
        append_n(log, 10);
        log.sync();
        append_n(log, 2);  // never synced: not acknowledged, may be lost
    }
    {
        SegmentLog log(options_in(dir));
        CHECK(log.head() == 10);
        CHECK(log.durable_head() == 10);
        CHECK(log.first_seq() == 1);
        CHECK(log.recovery().records == 10);
        CHECK(log.recovery().head_seq == 10);
        CHECK(log.recovery().segments == 1);
        CHECK(log.recovery().truncated_bytes == 0);
        CHECK(log.recovery().truncation_reason.empty());
        check_records(log.read(1, 100), 1, 10);

        CHECK(log.append(payload_for(11)) == 11);
        log.sync();
    }
    SegmentLog log(options_in(dir));
    CHECK(log.head() == 11);
    check_records(log.read(1, 100), 1, 11);
}

TEST_CASE("segment log: segments roll at segment_bytes and reads cross their boundaries") {
    TempDir dir;
    constexpr std::uint64_t kSegmentBytes = 1000;
    constexpr std::size_t kRecord = kHeader + 100;
    {
        SegmentLog log(options_in(dir, kSegmentBytes));
        append_n(log, 25);
        log.sync();  // one batch spanning three segments
        append_n(log, 5);
        log.sync();
        check_records(log.read(1, 100), 1, 30);
        check_records(log.read(9, 4), 9, 4);  // straddles the first boundary
    }

    // ceil(1000 / 116) = 9 records fit before a segment reaches segment_bytes.
    const auto files = segment_files(options_in(dir).dir);
    REQUIRE(files.size() == 4);
    CHECK(files[0].filename() == "00000000000000000001.seg");
    CHECK(files[1].filename() == "00000000000000000010.seg");
    CHECK(files[2].filename() == "00000000000000000019.seg");
    CHECK(files[3].filename() == "00000000000000000028.seg");
    CHECK(fs::file_size(files[0]) == 9 * kRecord);
    CHECK(fs::file_size(files[1]) == 9 * kRecord);  // full segments keep no zeros
    CHECK(fs::file_size(files[2]) == 9 * kRecord);
    // The one appended to holds 3 records, zero-filled up to segment_bytes.
    CHECK(fs::file_size(files[3]) == kSegmentBytes);

    SegmentLog log(options_in(dir, kSegmentBytes));
    CHECK(log.recovery().segments == 4);
    CHECK(log.head() == 30);
    check_records(log.read(1, 100), 1, 30);
    check_records(log.read(17, 5), 17, 5);
}

TEST_CASE("segment log: a record larger than segment_bytes is kept whole in one segment") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    {
        SegmentLog log(opts);
        log.append(payload_for(1, 3000));
        log.append(payload_for(2, 3000));
        log.append(payload_for(3, 10));
        log.sync();
    }
    const auto files = segment_files(opts.dir);
    REQUIRE(files.size() == 3);
    CHECK(fs::file_size(files[0]) == kHeader + 3000);
    CHECK(fs::file_size(files[1]) == kHeader + 3000);
    CHECK(fs::file_size(files[2]) == 1000);  // kHeader + 10, zero-filled to segment_bytes
    SegmentLog log(opts);
    const auto records = log.read(1, 10);
    REQUIRE(records.size() == 3);
    CHECK(records[1].payload == payload_for(2, 3000));
    CHECK(records[2].payload == payload_for(3, 10));
}

TEST_CASE("segment log: read honours from, max_records and max_bytes") {
    TempDir dir;
    SegmentLog log(options_in(dir));
    append_n(log, 20);
    log.sync();

    SUBCASE("from in the middle") { check_records(log.read(7, 100), 7, 14); }
    SUBCASE("from 0 starts at the first record") { check_records(log.read(0, 3), 1, 3); }
    SUBCASE("from past the head is empty") {
        CHECK(log.read(21, 10).empty());
        CHECK(log.read(1000, 10).empty());
    }
    SUBCASE("max_records") {
        check_records(log.read(5, 4), 5, 4);
        CHECK(log.read(5, 0).empty());
    }
    SUBCASE("max_bytes bounds the payload total") {
        check_records(log.read(3, 100, 250), 3, 2);  // a third record would make 300 bytes
        check_records(log.read(3, 100, 300), 3, 3);
    }
    SUBCASE("max_bytes below one record still returns one") {
        check_records(log.read(3, 100, 10), 3, 1);
        check_records(log.read(3, 100, 0), 3, 1);
    }
}

TEST_CASE("segment log: scan visits durable records in order and stops when asked") {
    TempDir dir;
    SegmentLog log(options_in(dir, 1000));
    append_n(log, 30);
    log.sync();
    append_n(log, 3);  // not durable: scan must not see them

    std::vector<std::uint64_t> seen;
    log.scan(8, [&](const Record& r) {
        CHECK(r.payload == payload_for(r.seq));
        seen.push_back(r.seq);
        return seen.size() < 4;
    });
    CHECK(seen == std::vector<std::uint64_t>{8, 9, 10, 11});

    seen.clear();
    log.scan(25, [&](const Record& r) {
        seen.push_back(r.seq);
        return true;
    });
    CHECK(seen == std::vector<std::uint64_t>{25, 26, 27, 28, 29, 30});
}

TEST_CASE("segment log: random reads through the sparse index, before and after reopen") {
    TempDir dir;
    // ~2.3 MB in 1 MiB segments: many index strides per segment and several segments.
    constexpr std::uint64_t kRecords = 20000;
    const auto opts = options_in(dir, 1u << 20, false);
    std::mt19937_64 rng(42);
    auto check_random_reads = [&](const SegmentLog& log) {
        std::uniform_int_distribution<std::uint64_t> pick(1, kRecords);
        for (int i = 0; i < 200; ++i) {
            const std::uint64_t from = pick(rng);
            const std::uint64_t n = std::min<std::uint64_t>(7, kRecords - from + 1);
            check_records(log.read(from, 7), from, n);
        }
        check_records(log.read(kRecords, 10), kRecords, 1);
        std::uint64_t count = 0;
        log.scan(1, [&](const Record& r) { return r.seq == ++count; });
        CHECK(count == kRecords);
    };
    {
        SegmentLog log(opts);
        while (log.head() < kRecords) {  // group commits of 64, as the broker does
            append_n(log, std::min<std::uint64_t>(64, kRecords - log.head()));
            log.sync();
        }
        REQUIRE(log.head() == kRecords);
        check_random_reads(log);
    }
    SegmentLog log(opts);
    CHECK(log.recovery().segments == 3);
    check_random_reads(log);
}

namespace {

// Twelve 100-byte records in 1000-byte segments: 1..9 fill the first, 10..12 go in the second,
// whose path is returned.
fs::path twelve_records_in_two_segments(const LogOptions& opts) {
    {
        SegmentLog log(opts);
        append_n(log, 12);
        log.sync();
    }
    const fs::path last = segment_files(opts.dir).back();
    REQUIRE(last.filename() == "00000000000000000010.seg");
    return last;
}

}  // namespace

TEST_CASE("segment log: recovery cuts a torn or corrupt tail off the last segment") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    constexpr std::size_t kRecord = kHeader + 100;
    const fs::path last = twelve_records_in_two_segments(opts);
    // Without the zeros written ahead of the records: a log from before they were, or one a
    // crash left before they reached the disk. (Torn records followed by zeros: below.)
    fs::resize_file(last, 3 * kRecord);
    const std::uint64_t size = fs::file_size(last);

    std::uint64_t expected_cut = 0;
    std::uint64_t expected_head = 11;
    SUBCASE("payload cut a few bytes short") {
        fs::resize_file(last, size - 3);
        expected_cut = kRecord - 3;
    }
    SUBCASE("header cut short") {
        fs::resize_file(last, size - kRecord + 5);
        expected_cut = 5;
    }
    SUBCASE("flipped byte in the last record's payload") {
        flip_byte(last, size - 1);
        expected_cut = kRecord;
    }
    SUBCASE("flipped byte in the last record's length") {
        flip_byte(last, size - kRecord + 3);  // makes the length absurd
        expected_cut = kRecord;
    }
    SUBCASE("garbage after the last record") {
        append_bytes(last, "not a record, just noise from a crash");
        expected_cut = 37;
        expected_head = 12;
    }
    SUBCASE("garbage after zeros after the last record") {
        append_bytes(last, std::string(4096, '\0') + "noise");
        expected_cut = 4101;
        expected_head = 12;
    }
    SUBCASE("the segment's only remaining record is torn") {
        fs::resize_file(last, 10);
        expected_cut = 10;
        expected_head = 9;
    }

    {
        SegmentLog log(opts);
        const auto& report = log.recovery();
        CHECK(report.truncated_bytes == expected_cut);
        CHECK(contains(report.truncation_reason, last.filename().string()));
        CHECK(contains(report.truncation_reason, "offset"));
        CHECK(report.head_seq == expected_head);
        CHECK(log.head() == expected_head);
        CHECK(log.durable_head() == expected_head);
        CHECK(fs::file_size(last) == (expected_head - 9) * kRecord);
        check_records(log.read(1, 100), 1, expected_head);

        CHECK(log.append(payload_for(expected_head + 1)) == expected_head + 1);
        log.sync();
    }
    SegmentLog log(opts);
    CHECK(log.recovery().truncated_bytes == 0);
    CHECK(log.recovery().truncation_reason.empty());
    check_records(log.read(1, 100), 1, expected_head + 1);
}

TEST_CASE("segment log: zeros after the last record are the preallocated end, not a torn tail") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    constexpr std::size_t kRecord = kHeader + 100;
    const fs::path last = twelve_records_in_two_segments(opts);
    REQUIRE(fs::file_size(last) == 1000);  // 3 records, then zeros up to segment_bytes

    SUBCASE("a clean end: nothing cut, the zeros kept, appends go after the records") {
        {
            SegmentLog log(opts);
            CHECK(log.recovery().truncated_bytes == 0);
            CHECK(log.recovery().truncation_reason.empty());
            CHECK(log.head() == 12);
            CHECK(fs::file_size(last) == 1000);
            CHECK(log.append(payload_for(13)) == 13);
            log.sync();
        }
        CHECK(fs::file_size(last) == 1000);
        SegmentLog log(opts);
        CHECK(log.recovery().truncated_bytes == 0);
        check_records(log.read(1, 100), 1, 13);
    }
    SUBCASE("a record torn in the zeros (its end never written) is cut with them") {
        const std::string torn = read_file(last).substr(0, kRecord / 2);  // a valid header
        {
            std::fstream f(last, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(static_cast<std::streamoff>(3 * kRecord));
            f.write(torn.data(), static_cast<std::streamsize>(torn.size()));
        }
        {
            SegmentLog log(opts);
            CHECK(log.recovery().truncated_bytes == 1000 - 3 * kRecord);
            CHECK(contains(log.recovery().truncation_reason, "offset 348"));
            CHECK(log.head() == 12);
            CHECK(fs::file_size(last) == 3 * kRecord);
            CHECK(log.append(payload_for(13)) == 13);
            log.sync();
        }
        SegmentLog log(opts);
        CHECK(log.recovery().truncated_bytes == 0);
        check_records(log.read(1, 100), 1, 13);
    }
}

TEST_CASE("segment log: a full segment left with zeros by a crash is cut to its records and "
          "sealed") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    constexpr std::size_t kRecord = kHeader + 100;
    twelve_records_in_two_segments(opts);
    const fs::path first = opts.dir / "00000000000000000001.seg";
    REQUIRE(fs::file_size(first) == 9 * kRecord);
    // What a crash between rolling to the next segment and cutting this one's zeros leaves.
    REQUIRE(fs::remove(fs::path(first).replace_extension(".seal")));
    append_bytes(first, std::string(4096, '\0'));
    {
        SegmentLog log(opts);
        CHECK(log.recovery().truncated_bytes == 0);
        CHECK(log.recovery().sealed_segments == 0);
        CHECK(log.head() == 12);
        check_records(log.read(1, 100), 1, 12);
    }
    CHECK(fs::file_size(first) == 9 * kRecord);
    SegmentLog log(opts);
    CHECK(log.recovery().sealed_segments == 1);  // not read again
    check_records(log.read(1, 100), 1, 12);
}

TEST_CASE("segment log: recovery refuses corruption that would drop later records") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    constexpr std::size_t kRecord = kHeader + 100;
    {
        SegmentLog log(opts);
        append_n(log, 14);  // segments 1..9 and 10..14
        log.sync();
    }
    const auto files = segment_files(opts.dir);
    REQUIRE(files.size() == 2);

    fs::path damaged;
    std::string offset_text;
    SUBCASE("a flipped payload byte followed by valid records in the last segment") {
        damaged = files[1];
        flip_byte(damaged, 2 * kRecord + kHeader + 50);  // record 12 of 10..14
        offset_text = std::to_string(2 * kRecord);
    }
    SUBCASE("a flipped byte in the last record of an earlier segment, whose seal is lost") {
        damaged = files[0];
        flip_byte(damaged, 9 * kRecord - 1);
        fs::remove(fs::path(damaged).replace_extension(".seal"));
        offset_text = std::to_string(8 * kRecord);
    }
    SUBCASE("a torn tail in an earlier segment") {
        damaged = files[0];
        fs::resize_file(damaged, 9 * kRecord - 20);
        offset_text = std::to_string(8 * kRecord);
    }
    const auto size_before = fs::file_size(damaged);

    try {
        SegmentLog log(opts);
        FAIL("open succeeded over mid-log corruption");
    } catch (const LogError& e) {
        const std::string what = e.what();
        CHECK(contains(what, damaged.filename().string()));
        CHECK(contains(what, "offset " + offset_text));
        CHECK(contains(what, "backup"));
    }
    CHECK(fs::file_size(damaged) == size_before);  // nothing was cut
}

TEST_CASE("segment log: a restart reads only the last segment: full ones are taken from their seal") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    constexpr std::size_t kRecord = kHeader + 100;
    {
        SegmentLog log(opts);
        append_n(log, 25);  // 1..9, 10..18, 19..25
        log.sync();
    }
    const auto files = segment_files(opts.dir);
    REQUIRE(files.size() == 3);
    CHECK(fs::exists(fs::path(files[0]).replace_extension(".seal")));
    CHECK(fs::exists(fs::path(files[1]).replace_extension(".seal")));
    CHECK_FALSE(fs::exists(fs::path(files[2]).replace_extension(".seal")));

    // Damage inside a sealed segment is not seen at start, but any read of it says so.
    flip_byte(files[0], 9 * kRecord - 1);
    SegmentLog log(opts);
    CHECK(log.recovery().sealed_segments == 2);
    CHECK(log.head() == 25);
    CHECK(log.read(1, 8).size() == 8);
    CHECK(log.read(10, 16).size() == 16);
    try {
        log.read(9, 1);
        FAIL("read a damaged record");
    } catch (const LogError& e) {
        CHECK(contains(e.what(), files[0].filename().string()));
        CHECK(contains(e.what(), "backup"));
    }
    // Appends continue in the last segment, and the next full one is sealed too.
    append_n(log, 10);
    log.sync();
    CHECK(segment_files(opts.dir).size() == 4);
    CHECK(fs::exists(fs::path(files[2]).replace_extension(".seal")));
}

TEST_CASE("segment log: a seal that disagrees with its segment is ignored and the segment read") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    {
        SegmentLog log(opts);
        append_n(log, 25);
        log.sync();
    }
    const auto files = segment_files(opts.dir);
    const auto seal = fs::path(files[0]).replace_extension(".seal");
    bool refused = false;  // what reading the segment in full must conclude
    SUBCASE("a damaged seal") { flip_byte(seal, 12); }
    SUBCASE("a seal of another size") { fs::resize_file(seal, 20); }
    SUBCASE("a segment grown after sealing") {
        std::ofstream(files[0], std::ios::app | std::ios::binary) << "junk";
        refused = true;  // bytes past its last record, in the middle of the log
    }
    if (refused) {
        CHECK_THROWS_AS(SegmentLog{opts}, LogError);
    } else {
        // Read in full, and sealed again from what was read.
        SegmentLog log(opts);
        CHECK(log.recovery().sealed_segments == 1);
        CHECK(log.read(1, 25).size() == 25);
        CHECK(read_seal_ok(seal));
    }
}

TEST_CASE("segment log: recovery refuses gaps and misnamed segments") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    {
        SegmentLog log(opts);
        append_n(log, 25);  // 1..9, 10..18, 19..25
        log.sync();
    }
    const auto files = segment_files(opts.dir);
    REQUIRE(files.size() == 3);

    SUBCASE("a missing middle segment") { fs::remove(files[1]); }
    SUBCASE("a segment renamed so its first record does not match") {
        fs::rename(files[2], opts.dir / "00000000000000000020.seg");
    }
    SUBCASE("an empty segment in the middle") {
        fs::rename(files[2], opts.dir / "00000000000000000020.seg");
        std::ofstream(opts.dir / "00000000000000000019.seg").close();
    }
    CHECK_THROWS_AS(SegmentLog{opts}, LogError);
}

TEST_CASE("segment log: an empty log") {
    TempDir dir;
    const auto opts = options_in(dir);
    {
        SegmentLog log(opts);
        CHECK(log.head() == 0);
        CHECK(log.durable_head() == 0);
        CHECK(log.first_seq() == 1);
        CHECK(log.read(0, 10).empty());
        CHECK(log.read(1, 10).empty());
        bool visited = false;
        log.scan(1, [&](const Record&) { return visited = true; });
        CHECK_FALSE(visited);
        CHECK(log.recovery().segments == 0);
        CHECK(log.recovery().records == 0);
        CHECK(log.recovery().head_seq == 0);
        log.sync();  // nothing to write
    }
    CHECK(segment_files(opts.dir).empty());

    SegmentLog log(opts);
    CHECK(log.head() == 0);
    CHECK(log.append("first") == 1);
    CHECK(log.first_seq() == 1);
}

TEST_CASE("segment log: an empty trailing segment file is accepted and appended to") {
    TempDir dir;
    const auto opts = options_in(dir, 1000);
    {
        SegmentLog log(opts);
        append_n(log, 5);
        log.sync();
    }
    const fs::path empty = opts.dir / "00000000000000000006.seg";
    std::ofstream(empty).close();
    {
        SegmentLog log(opts);
        CHECK(log.recovery().segments == 2);
        CHECK(log.recovery().truncated_bytes == 0);
        CHECK(log.head() == 5);
        CHECK(log.append(payload_for(6)) == 6);
        log.sync();
        check_records(log.read(1, 10), 1, 6);
    }
    // The first segment is full now: cut to its records. The next holds one, then zeros.
    CHECK(fs::file_size(opts.dir / "00000000000000000001.seg") == 5 * (kHeader + 100));
    CHECK(fs::file_size(empty) == 1000);
}

TEST_CASE("segment log: a payload over the limit is refused and nothing is written") {
    TempDir dir;
    const auto opts = options_in(dir, 64ull << 20, false);
    SegmentLog log(opts);
    CHECK_THROWS_AS(log.append(std::string(SegmentLog::kMaxPayloadBytes + 1, 'x')), LogError);
    CHECK(log.head() == 0);
    log.sync();
    CHECK(segment_files(opts.dir).empty());

    // The log stays usable, and a payload of exactly the limit is fine.
    const std::string biggest(SegmentLog::kMaxPayloadBytes, 'y');
    CHECK(log.append(biggest) == 1);
    log.sync();
    const auto records = log.read(1, 10);
    REQUIRE(records.size() == 1);
    CHECK(records[0].payload == biggest);
}

TEST_CASE("segment log: a second open of the same directory is refused") {
    TempDir dir;
    SegmentLog log(options_in(dir));
    CHECK_THROWS_AS(SegmentLog{options_in(dir)}, LogError);
}

namespace {

// A file size limit for this process (RLIMIT_FSIZE, SIGXFSZ ignored), so that write() fails
// with EFBIG past it: a real I/O error without root or a full disk. Lifted by restore() or at
// the end of the scope, whichever comes first.
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t bytes) {
        REQUIRE(getrlimit(RLIMIT_FSIZE, &saved_) == 0);
        saved_handler_ = std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit limited = saved_;
        limited.rlim_cur = bytes;
        active_ = setrlimit(RLIMIT_FSIZE, &limited) == 0;
        if (!active_) std::signal(SIGXFSZ, saved_handler_);
        REQUIRE(active_);
    }
    ~FileSizeLimit() { restore(); }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;

    void restore() {
        if (!active_) return;
        setrlimit(RLIMIT_FSIZE, &saved_);
        std::signal(SIGXFSZ, saved_handler_);
        active_ = false;
    }

private:
    struct rlimit saved_ {};
    void (*saved_handler_)(int) = SIG_DFL;
    bool active_ = false;
};

}  // namespace

TEST_CASE("segment log: after a write error the log refuses appends until reopened") {
    TempDir dir;
    const auto opts = options_in(dir);
    constexpr std::size_t kRecord = kHeader + 100;
    constexpr rlim_t kFileLimit = 4096;
    std::uint64_t file_bytes = 0;
    {
        SegmentLog log(opts);
        append_n(log, 10);
        log.sync();

        // write() fails with EFBIG part-way through the batch. Lifted before any assertion.
        FileSizeLimit limit(kFileLimit);
        append_n(log, 40);
        std::string message;
        try {
            log.sync();
        } catch (const LogError& e) {
            message = e.what();
        }
        limit.restore();

        CHECK(contains(message, "00000000000000000001.seg"));
        CHECK(contains(message, "too large"));  // strerror(EFBIG)
        file_bytes = fs::file_size(opts.dir / "00000000000000000001.seg");
        CHECK(log.durable_head() == 10);
        CHECK_THROWS_AS(log.append("more"), LogError);
        CHECK_THROWS_AS(log.sync(), LogError);
        check_records(log.read(1, 100), 1, 10);  // durable records stay readable
    }
    // The partial write left whole records up to the limit and a torn one (in the zeros
    // written after the first sync's records).
    SegmentLog log(opts);
    const std::uint64_t whole = kFileLimit / kRecord;
    CHECK(log.head() == whole);
    CHECK(file_bytes == 10 * kRecord + SegmentLog::kPreallocateBytes);
    CHECK(log.recovery().truncated_bytes == file_bytes - whole * kRecord);
    check_records(log.read(1, 100), 1, whole);
    CHECK(log.append(payload_for(whole + 1)) == whole + 1);
    log.sync();
}

TEST_CASE("segment log: with no room for the zeros ahead, records are still written and synced") {
    TempDir dir;
    const auto opts = options_in(dir);
    constexpr std::size_t kRecord = kHeader + 100;
    constexpr rlim_t kFileLimit = 4096;  // room for 35 records, not for the zeros after them
    const fs::path segment = opts.dir / "00000000000000000001.seg";
    {
        SegmentLog log(opts);
        FileSizeLimit limit(kFileLimit);

        std::string message;
        std::uint64_t size_after_first = 0;
        try {
            append_n(log, 10);
            log.sync();
            size_after_first = fs::file_size(segment);
            append_n(log, 20);
            log.sync();
        } catch (const LogError& e) {
            message = e.what();
        }
        limit.restore();

        CHECK(message.empty());
        CHECK_FALSE(log.failed());
        CHECK(size_after_first == 10 * kRecord);  // the partial zeros were cut again
        CHECK(log.durable_head() == 30);
        check_records(log.read(1, 100), 1, 30);
    }
    CHECK(fs::file_size(segment) == 30 * kRecord);
    SegmentLog log(opts);
    CHECK(log.recovery().truncated_bytes == 0);
    check_records(log.read(1, 100), 1, 30);
}

namespace {

// Arms failpoints for one test and disarms them however it ends.
struct ArmedFailpoints {
    explicit ArmedFailpoints(std::string_view spec) { op::failpoint::configure(spec); }
    ~ArmedFailpoints() { op::failpoint::configure(""); }
    ArmedFailpoints(const ArmedFailpoints&) = delete;
    ArmedFailpoints& operator=(const ArmedFailpoints&) = delete;
};

std::string sync_error(SegmentLog& log) {
    try {
        log.sync();
    } catch (const LogError& e) {
        return e.what();
    }
    return {};
}

}  // namespace

TEST_CASE("segment log: a failed fsync is never trusted: reopen cuts back to the last good sync") {
    TempDir dir;
    const auto opts = options_in(dir);
    ArmedFailpoints armed("log.fsync=eio@2");  // the first sync works, the second fails
    {
        SegmentLog log(opts);
        append_n(log, 10);
        log.sync();
        const fs::path segment = opts.dir / "00000000000000000001.seg";
        const std::uint64_t good_bytes = 10 * (kHeader + 100);
        const auto written_after_good = [&] {
            const std::string bytes = read_file(segment);
            return bytes.size() > good_bytes &&
                   bytes.find_first_not_of('\0', good_bytes) != std::string::npos;
        };
        CHECK_FALSE(written_after_good());  // zeros ahead of the records

        append_n(log, 5);
        const std::string error = sync_error(log);
        CHECK(contains(error, "fdatasync"));
        CHECK(contains(error, "Input/output error"));
        CHECK(log.failed());
        CHECK(log.durable_head() == 10);
        CHECK_THROWS_AS(log.append("more"), LogError);
        CHECK(written_after_good());  // the unsynced records were written...

        log.reopen();  // ...and are cut off, not re-synced as if they were safe
        CHECK_FALSE(log.failed());
        CHECK(log.head() == 10);
        CHECK(log.durable_head() == 10);
        CHECK(fs::file_size(segment) == good_bytes);
        check_records(log.read(1, 100), 1, 10);

        // Appends continue at seq 11 with new records.
        CHECK(log.append("new-11") == 11);
        CHECK(log.append("new-12") == 12);
        log.sync();
    }
    // A fresh open sees the same: the records that failed to sync never come back.
    SegmentLog log(opts);
    CHECK(log.head() == 12);
    CHECK(log.recovery().truncated_bytes == 0);
    const auto records = log.read(10, 100);
    REQUIRE(records.size() == 3);
    CHECK(records[0].payload == payload_for(10));
    CHECK(records[1].payload == "new-11");
    CHECK(records[2].payload == "new-12");
}

TEST_CASE("segment log: disk full while a batch rolls into a new segment, then space returns") {
    TempDir dir;
    constexpr std::size_t kRecord = kHeader + 100;
    const auto opts = options_in(dir, 10 * kRecord);  // ten records a segment
    {
        SegmentLog log(opts);
        append_n(log, 8);
        log.sync();
        {
            // The batch writes the tail of segment 1, then a new segment 9..: the second
            // write fails with ENOSPC.
            ArmedFailpoints armed("log.write=enospc@2");
            append_n(log, 6);
            const std::string error = sync_error(log);
            CHECK(contains(error, "No space left on device"));
            CHECK(log.durable_head() == 8);
            log.reopen();
            CHECK(log.head() == 8);
            check_records(log.read(1, 100), 1, 8);
        }
        // Space is back: the same seqs are taken by the records appended now.
        append_n(log, 6);
        log.sync();
        check_records(log.read(1, 100), 1, 14);
    }
    SegmentLog log(opts);
    CHECK(log.head() == 14);
    check_records(log.read(1, 100), 1, 14);
}

TEST_CASE("segment log: while the disk keeps failing every sync fails and nothing is kept") {
    TempDir dir;
    const auto opts = options_in(dir);
    SegmentLog log(opts);
    append_n(log, 3);
    log.sync();
    {
        ArmedFailpoints armed("log.write=eio@1+");
        for (int attempt = 0; attempt < 3; ++attempt) {
            append_n(log, 2);
            CHECK(contains(sync_error(log), "Input/output error"));
            log.reopen();
            CHECK(log.head() == 3);
        }
    }
    append_n(log, 2);
    log.sync();
    check_records(log.read(1, 100), 1, 5);
}

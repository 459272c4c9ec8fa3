#include "op/broker/id_index.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <future>
#include <stdexcept>
#include <vector>

#include "op/broker/recent_ids.hpp"
#include "op/events/ids.hpp"

namespace op::broker {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kRetryInterval = std::chrono::seconds(1);  // between tries at a failed run write

constexpr char kMagic[8] = {'O', 'P', 'I', 'D', 'R', 'U', 'N', '1'};
constexpr std::size_t kHeaderBytes = 32;    // magic, count, first seq, last seq
constexpr std::size_t kEntryBytes = 16;     // hash, seq
constexpr std::size_t kBlockEntries = 256;  // one fence per block: a lookup reads one block
constexpr unsigned kFilterHashes = 8;
constexpr std::uint64_t kFilterBitsPerId = 16;  // with 8 hashes: ~0.1 % false positives

struct Entry {
    std::uint64_t hash;
    std::uint64_t seq;
    bool operator<(const Entry& o) const { return hash != o.hash ? hash < o.hash : seq < o.seq; }
};

// The filter's second hash for double hashing: the id hash is already well mixed, so its
// halves swapped serve (made odd so that it is never 0 and the probes differ).
std::uint64_t step_of(std::uint64_t hash) noexcept { return ((hash << 32) | (hash >> 32)) | 1; }

void put_u64(char* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}

[[noreturn]] void fail(const std::string& what, const fs::path& path) {
    throw std::runtime_error(
        fmt::format("id index: {} {}: {}", what, path.string(), std::strerror(errno)));
}

bool pread_all(int fd, char* buf, std::size_t n, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t got = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        done += static_cast<std::size_t>(got);
    }
    return true;
}

std::string run_name(std::uint64_t first, std::uint64_t last) {
    return fmt::format("run-{:020}-{:020}.ids", first, last);
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_run_name(const std::string& name) {
    // run-<20 digits>-<20 digits>.ids
    if (name.size() != 4 + 20 + 1 + 20 + 4 || name.rfind("run-", 0) != 0 ||
        name.substr(name.size() - 4) != ".ids" || name[24] != '-') {
        return std::nullopt;
    }
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    const char* p = name.data();
    if (std::from_chars(p + 4, p + 24, first).ec != std::errc{} ||
        std::from_chars(p + 25, p + 45, last).ec != std::errc{}) {
        return std::nullopt;
    }
    return std::pair{first, last};
}

// A Bloom filter over the 64-bit hashes of every id in the runs.
class Filter {
public:
    void reset(std::uint64_t capacity_ids) {
        const std::uint64_t bits =
            std::max<std::uint64_t>(capacity_ids * kFilterBitsPerId, 1u << 16);
        words_.assign((bits + 63) / 64, 0);
        bits_ = words_.size() * 64;
        capacity_ = capacity_ids;
    }
    void add(std::uint64_t hash) {
        const std::uint64_t step = step_of(hash);
        for (unsigned i = 0; i < kFilterHashes; ++i) {
            const std::uint64_t bit = bit_of(hash + i * step);
            words_[bit / 64] |= 1ull << (bit % 64);
        }
    }
    bool maybe(std::uint64_t hash) const {
        if (bits_ == 0) return false;
        const std::uint64_t step = step_of(hash);
        for (unsigned i = 0; i < kFilterHashes; ++i) {
            const std::uint64_t bit = bit_of(hash + i * step);
            if (!(words_[bit / 64] & (1ull << (bit % 64)))) return false;
        }
        return true;
    }
    std::uint64_t capacity() const { return capacity_; }
    std::uint64_t bytes() const { return words_.size() * 8; }

private:
    // A well-mixed 64-bit value mapped onto [0, bits_) by a multiply and a shift (Lemire's
    // range reduction): a probe was a 64-bit division, eight an id, and a run adds 262,144
    // ids at once; a power-of-two size would cost up to twice the memory instead.
    std::uint64_t bit_of(std::uint64_t h) const {
        return static_cast<std::uint64_t>((static_cast<unsigned __int128>(h) * bits_) >> 64);
    }

    std::vector<std::uint64_t> words_;
    std::uint64_t bits_ = 0;
    std::uint64_t capacity_ = 0;
};

struct Run {
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    std::uint64_t count = 0;
    fs::path path;
    int fd = -1;
    std::vector<std::uint64_t> fences;  // hash of entry 0, 256, 512, ...
};

// Reads a whole run, checks it, and calls `each` with every entry in file order.
template <class Each>
bool read_run(std::uint64_t first, std::uint64_t last, int fd, std::uint64_t& count, Each&& each) {
    char header[kHeaderBytes];
    if (!pread_all(fd, header, kHeaderBytes, 0) || std::memcmp(header, kMagic, 8) != 0) {
        return false;
    }
    count = get_u64(header + 8);
    if (get_u64(header + 16) != first || get_u64(header + 24) != last) return false;
    uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(header), kHeaderBytes);
    std::vector<char> chunk(kBlockEntries * kEntryBytes * 64);
    std::uint64_t done = 0;
    std::uint64_t previous = 0;
    while (done < count) {
        const std::uint64_t n = std::min<std::uint64_t>(count - done, chunk.size() / kEntryBytes);
        if (!pread_all(fd, chunk.data(), n * kEntryBytes, kHeaderBytes + done * kEntryBytes)) {
            return false;
        }
        crc = crc32(crc, reinterpret_cast<const Bytef*>(chunk.data()),
                    static_cast<uInt>(n * kEntryBytes));
        for (std::uint64_t i = 0; i < n; ++i) {
            const std::uint64_t hash = get_u64(chunk.data() + i * kEntryBytes);
            const std::uint64_t seq = get_u64(chunk.data() + i * kEntryBytes + 8);
            if ((done + i > 0 && hash < previous) || seq < first || seq > last) return false;
            previous = hash;
            each(done + i, hash);
        }
        done += n;
    }
    char trailer[4];
    if (!pread_all(fd, trailer, 4, kHeaderBytes + count * kEntryBytes)) return false;
    std::uint32_t stored = 0;
    for (int i = 0; i < 4; ++i)
        stored |= static_cast<std::uint32_t>(static_cast<unsigned char>(trailer[i])) << (8 * i);
    return stored == static_cast<std::uint32_t>(crc);
}

// A run file the writer thread has made, to be taken in by the broker's thread.
struct WrittenRun {
    Run run;
    std::vector<std::uint64_t> hashes;  // the run's, for the filter
    std::optional<Filter> filter;       // when the runs outgrew the filter: a bigger one
    double took_ms = 0;
};

// The runs before the one being written, for a bigger filter to be built from off the broker's
// thread (their fds duplicated: retention may delete a file meanwhile).
struct FilterRebuild {
    std::uint64_t capacity = 0;
    struct Source {
        std::uint64_t first;
        std::uint64_t last;
        int fd;
    };
    std::vector<Source> runs;
};

// Writes `ids` out as the run of seqs first..last: sorted, checksummed, synced, renamed into
// place, and opened. Runs on the writer thread; reads `ids` only, which nothing changes
// meanwhile. Throws std::runtime_error saying what failed.
WrittenRun write_run_file(const fs::path& dir, const RecentIds& ids, std::uint64_t first,
                          std::uint64_t last, FilterRebuild rebuild) {
    const auto started = std::chrono::steady_clock::now();
    struct CloseSources {
        FilterRebuild& rebuild;
        ~CloseSources() {
            for (const auto& source : rebuild.runs) ::close(source.fd);
        }
    } close_sources{rebuild};
    std::vector<Entry> entries;
    entries.reserve(ids.size());
    ids.for_each([&](std::uint64_t hash, std::uint64_t seq) { entries.push_back({hash, seq}); });
    std::sort(entries.begin(), entries.end());

    std::string bytes(kHeaderBytes + entries.size() * kEntryBytes + 4, '\0');
    std::memcpy(bytes.data(), kMagic, 8);
    put_u64(bytes.data() + 8, entries.size());
    put_u64(bytes.data() + 16, first);
    put_u64(bytes.data() + 24, last);
    for (std::size_t i = 0; i < entries.size(); ++i) {
        put_u64(bytes.data() + kHeaderBytes + i * kEntryBytes, entries[i].hash);
        put_u64(bytes.data() + kHeaderBytes + i * kEntryBytes + 8, entries[i].seq);
    }
    const std::size_t body = bytes.size() - 4;
    const auto crc = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(body)));
    for (int i = 0; i < 4; ++i) bytes[body + i] = static_cast<char>((crc >> (8 * i)) & 0xff);

    const fs::path path = dir / run_name(first, last);
    const fs::path temp = path.string() + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create", temp);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd);
            fail("cannot write", temp);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fdatasync(fd) != 0) {
        ::close(fd);
        fail("cannot sync", temp);
    }
    ::close(fd);
    if (::rename(temp.c_str(), path.c_str()) != 0) fail("cannot rename", temp);
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        ::fsync(dir_fd);
        ::close(dir_fd);
    }

    WrittenRun written;
    Run& run = written.run;
    run = Run{first, last, entries.size(), path, ::open(path.c_str(), O_RDONLY | O_CLOEXEC), {}};
    if (run.fd < 0) fail("cannot open", path);
    for (std::size_t i = 0; i < entries.size(); i += kBlockEntries)
        run.fences.push_back(entries[i].hash);
    written.hashes.reserve(entries.size());
    for (const auto& e : entries) written.hashes.push_back(e.hash);
    if (rebuild.capacity > 0) {
        // Every run is read for it (16 bytes an id): on the broker's thread that pause grew
        // with the log, each time the filter doubled.
        Filter& filter = written.filter.emplace();
        filter.reset(rebuild.capacity);
        for (const auto& source : rebuild.runs) {
            std::uint64_t count = 0;
            if (!read_run(source.first, source.last, source.fd, count,
                          [&](std::uint64_t, std::uint64_t hash) { filter.add(hash); })) {
                // The broker's thread rebuilds it, and throws saying which run if it cannot
                // read it either.
                written.filter.reset();
                break;
            }
        }
        if (written.filter) {
            for (const auto h : written.hashes) filter.add(h);
        }
    }
    const std::chrono::duration<double, std::milli> took =
        std::chrono::steady_clock::now() - started;
    written.took_ms = took.count();
    return written;
}

}  // namespace

std::uint64_t id_hash(std::string_view id) noexcept { return events::id_hash64(id); }

struct IdIndex::Impl {
    IdIndexOptions options;
    std::vector<Run> runs;  // by seq, contiguous from 1
    std::uint64_t entries_in_runs = 0;
    Filter filter;
    RecentIds recent;
    std::uint64_t recent_first = 0;
    std::uint64_t recent_last = 0;
    // The ids of the run being written (or whose write failed and waits for another try):
    // still looked up here until the run is taken in. Writing a run took the broker's loop
    // 95-121 ms (sort, write, two fsyncs), every 262,144 events; now a thread of its own does it.
    RecentIds sealed;
    std::uint64_t sealed_first = 0;
    std::uint64_t sealed_last = 0;
    std::future<WrittenRun> writing;  // valid while a run is being written
    Clock::time_point retry_at{};     // after a failed write: not again before this

    ~Impl() {
        if (writing.valid()) {
            try {
                ::close(writing.get().run.fd);
            } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the next start
                                               // rewrites it
            }
        }
        for (auto& r : runs) ::close(r.fd);
    }

    std::uint64_t indexed_through() const { return runs.empty() ? 0 : runs.back().last; }

    // What a table of recent ids is sized for: every id a run takes, and the group or two that
    // arrive while the log is not yet durable through the newest (flush_if_full waits for it).
    std::size_t table_ids() const { return options.recent_limit + options.recent_limit / 4; }

    void load(std::uint64_t log_first, std::uint64_t log_head) {
        std::error_code ec;
        fs::create_directories(options.dir, ec);
        if (ec) {
            throw std::runtime_error(
                fmt::format("id index: cannot create {}: {}", options.dir.string(), ec.message()));
        }
        std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, fs::path>> found;
        for (const auto& entry : fs::directory_iterator(options.dir)) {
            if (auto range = parse_run_name(entry.path().filename().string())) {
                found.emplace_back(*range, entry.path());
            } else if (entry.path().extension() == ".tmp") {
                fs::remove(entry.path(), ec);  // a run whose write a crash interrupted
            }
        }
        std::sort(found.begin(), found.end());
        // Runs of events retention has deleted are of no more use.
        while (!found.empty() && found.front().first.second < log_first) {
            fs::remove(found.front().second, ec);
            found.erase(found.begin());
        }
        std::uint64_t expected = found.empty() ? 1 : found.front().first.first;
        bool discard = expected > std::max<std::uint64_t>(log_first, 1);
        for (auto& [range, path] : found) {
            if (!discard && (range.first != expected || range.second < range.first ||
                             range.second > log_head)) {
                spdlog::warn(
                    "id index: {} does not continue the runs before it or lies beyond "
                    "the log's head {}; it and later runs are rebuilt from the log",
                    path.string(), log_head);
                discard = true;
            }
            Run run{range.first, range.second, 0, path, -1, {}};
            if (!discard) {
                run.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                if (run.fd < 0) fail("cannot open", path);
                const bool ok = read_run(run.first, run.last, run.fd, run.count,
                                         [&](std::uint64_t i, std::uint64_t hash) {
                                             if (i % kBlockEntries == 0) run.fences.push_back(hash);
                                         });
                if (!ok) {
                    spdlog::warn(
                        "id index: {} is damaged; it and later runs are rebuilt from "
                        "the log",
                        path.string());
                    ::close(run.fd);
                    discard = true;
                }
            }
            if (discard) {
                fs::remove(path, ec);
                continue;
            }
            entries_in_runs += run.count;
            expected = run.last + 1;
            runs.push_back(std::move(run));
        }
        rebuild_filter(std::max<std::uint64_t>(entries_in_runs * 2, options.recent_limit * 4));
    }

    // Sizes the filter for `capacity` ids and adds every run's hashes (one sequential read of
    // the runs: at start, and each time the runs outgrow the filter).
    void rebuild_filter(std::uint64_t capacity) {
        filter.reset(capacity);
        for (auto& run : runs) {
            std::uint64_t count = 0;
            if (!read_run(run.first, run.last, run.fd, count,
                          [&](std::uint64_t, std::uint64_t hash) { filter.add(hash); })) {
                throw std::runtime_error("id index: " + run.path.string() +
                                         " changed under the broker");
            }
        }
    }

    bool run_has(const Run& run, std::uint64_t hash, const Confirm& confirm) const {
        if (run.fences.empty()) return false;
        // The first block that can hold `hash`: the last fence below it (equal hashes may
        // start in the block before the fence that equals them).
        auto it = std::lower_bound(run.fences.begin(), run.fences.end(), hash);
        std::size_t block =
            it == run.fences.begin() ? 0 : static_cast<std::size_t>(it - run.fences.begin()) - 1;
        std::vector<char> buf(kBlockEntries * kEntryBytes);
        for (; block < run.fences.size(); ++block) {
            if (run.fences[block] > hash) break;
            const std::uint64_t start = block * kBlockEntries;
            const std::uint64_t n = std::min<std::uint64_t>(kBlockEntries, run.count - start);
            if (!pread_all(run.fd, buf.data(), n * kEntryBytes,
                           kHeaderBytes + start * kEntryBytes)) {
                fail("cannot read", run.path);
            }
            for (std::uint64_t i = 0; i < n; ++i) {
                const std::uint64_t h = get_u64(buf.data() + i * kEntryBytes);
                if (h == hash && confirm(get_u64(buf.data() + i * kEntryBytes + 8))) return true;
                if (h > hash) return false;
            }
        }
        return false;
    }

    std::optional<std::uint64_t> find_in_runs(std::uint64_t hash, const Confirm& confirm) const {
        if (!filter.maybe(hash)) return std::nullopt;
        std::optional<std::uint64_t> seq;
        const Confirm remember = [&](std::uint64_t s) {
            if (!confirm(s)) return false;
            seq = s;
            return true;
        };
        for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
            if (run_has(*it, hash, remember)) return seq;
        }
        return std::nullopt;
    }

    // Installs a run the writer thread has finished; `wait`: waits for it. Throws what the
    // write threw (the ids stay in `sealed` and are written again later).
    void collect_written(bool wait) {
        if (!writing.valid()) return;
        if (!wait && writing.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
            return;
        }
        WrittenRun written;
        try {
            written = writing.get();
        } catch (...) {
            retry_at = Clock::now() + kRetryInterval;
            throw;
        }
        const auto started = Clock::now();
        Run& run = runs.emplace_back(std::move(written.run));
        entries_in_runs += run.count;
        if (written.filter && written.filter->capacity() >= entries_in_runs) {
            filter = std::move(*written.filter);
        } else if (entries_in_runs > filter.capacity()) {
            rebuild_filter(entries_in_runs * 2);
        } else {
            for (const auto h : written.hashes) filter.add(h);
        }
        sealed.clear();
        const std::chrono::duration<double, std::milli> installing = Clock::now() - started;
        spdlog::info(
            "id index: run of seqs {}-{} ({} ids) written in {:.1f} ms on its own "
            "thread, taken in in {:.1f} ms",
            run.first, run.last, run.count, written.took_ms, installing.count());
    }

    void start_writing() {
        FilterRebuild rebuild;
        const std::uint64_t total = entries_in_runs + sealed.size();
        if (total > filter.capacity()) {
            rebuild.capacity = total * 2;
            for (const Run& run : runs) {
                const int fd = ::dup(run.fd);
                if (fd < 0) {  // out of fds: the broker's thread rebuilds it when the run is in
                    for (const auto& source : rebuild.runs) ::close(source.fd);
                    rebuild = {};
                    break;
                }
                rebuild.runs.push_back({run.first, run.last, fd});
            }
        }
        writing = std::async(std::launch::async, write_run_file, options.dir, std::cref(sealed),
                             sealed_first, sealed_last, std::move(rebuild));
    }
};

IdIndex::IdIndex(IdIndexOptions options, std::uint64_t log_first, std::uint64_t log_head)
    : impl_(std::make_unique<Impl>()) {
    impl_->options = std::move(options);
    impl_->recent = RecentIds(impl_->table_ids());
    impl_->load(log_first, log_head);
}

void IdIndex::drop_runs_before(std::uint64_t first_seq) {
    auto& d = *impl_;
    std::uint64_t dropped = 0;
    while (!d.runs.empty() && d.runs.front().last < first_seq) {
        Run& run = d.runs.front();
        ::close(run.fd);
        std::error_code ec;
        fs::remove(run.path, ec);
        dropped += run.count;
        d.entries_in_runs -= run.count;
        d.runs.erase(d.runs.begin());
    }
    // Their hashes stay in the filter (a "maybe" costs one read) until they are half of it.
    if (dropped > 0 && d.filter.capacity() > 4 * std::max<std::uint64_t>(d.entries_in_runs, 1)) {
        d.rebuild_filter(
            std::max<std::uint64_t>(d.entries_in_runs * 2, d.options.recent_limit * 4));
    }
}

IdIndex::~IdIndex() = default;

std::uint64_t IdIndex::indexed_through() const { return impl_->indexed_through(); }

std::optional<std::uint64_t> IdIndex::find(std::string_view id, const Confirm& confirm) const {
    const auto hash = id_hash(id);
    if (auto seq = impl_->recent.find(id, hash)) return seq;
    if (!impl_->sealed.empty()) {
        if (auto seq = impl_->sealed.find(id, hash)) return seq;
    }
    return impl_->find_in_runs(hash, confirm);
}

void IdIndex::insert(std::string_view id, std::uint64_t seq) {
    if (impl_->recent.empty()) impl_->recent_first = seq;
    impl_->recent.insert(id, id_hash(id), seq);
    impl_->recent_last = std::max(impl_->recent_last, seq);
}

void IdIndex::erase_recent(std::string_view id) { impl_->recent.erase(id, id_hash(id)); }

void IdIndex::flush_if_full(std::uint64_t durable_seq) {
    auto& d = *impl_;
    // Far behind (a start indexing a long log faster than runs are written): wait, so that
    // memory stays bounded.
    d.collect_written(d.recent.size() >= 2 * d.options.recent_limit);
    if (!d.sealed.empty()) {
        // A write failed: try it again, not more often than kRetryInterval.
        if (!d.writing.valid() && Clock::now() >= d.retry_at) d.start_writing();
        return;
    }
    if (d.recent.size() < d.options.recent_limit || d.recent_last > durable_seq) return;
    // `recent` takes the last run's table, cleared; the first run makes it (sized like
    // `recent`, so ids never wait for a table to grow), so a broker that never fills a run
    // holds one table.
    if (d.sealed.capacity() < d.recent.capacity()) d.sealed = RecentIds(d.table_ids());
    std::swap(d.recent, d.sealed);
    d.sealed_first = d.recent_first;
    d.sealed_last = d.recent_last;
    d.start_writing();
}

void IdIndex::finish_writes() { impl_->collect_written(true); }

std::size_t IdIndex::recent_size() const { return impl_->recent.size() + impl_->sealed.size(); }
std::size_t IdIndex::run_count() const { return impl_->runs.size(); }
std::uint64_t IdIndex::run_entries() const { return impl_->entries_in_runs; }
std::uint64_t IdIndex::filter_bytes() const { return impl_->filter.bytes(); }

}  // namespace op::broker

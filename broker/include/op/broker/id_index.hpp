// The broker's duplicate check: which event ids are in the log, and at which seq, for every
// event ever appended, in memory that does not grow with the log and without reading the log
// at start.
//
// The newest ids (at most `recent_limit`) are held whole in a hash table (recent_ids.hpp).
// Once the log is durable past them they are written out, on a thread of the index's own, as a
// run: a file of (64-bit id hash, seq) pairs sorted by hash, under
// DIR/run-<first seq>-<last seq>.ids. Runs are never changed again. A lookup that misses the
// table asks a Bloom filter over every run's hashes (2 bytes an id), and only when it says
// "maybe" reads one 4 KiB block of each run from disk (found through a sparse in-memory fence:
// 16 bytes per 256 ids). A hash match is confirmed by the caller against the record itself, so
// a hash collision can never turn a new event into a false duplicate.
//
// At start the runs are loaded (their fences and the filter, 16 bytes an id read from the run
// files) and the caller re-inserts only the log's tail after the last run. Not thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace op::broker {

struct IdIndexOptions {
    std::filesystem::path dir;            // where the runs live
    std::size_t recent_limit = 1u << 18;  // ids held whole before a run is written
};

// Stable across builds and machines (the runs outlive the binary): events::id_hash64.
std::uint64_t id_hash(std::string_view id) noexcept;

class IdIndex {
public:
    // Says whether the record at `seq` has exactly this id (reads it from the log).
    using Confirm = std::function<bool(std::uint64_t seq)>;

    // Loads the runs in options.dir for a log holding seqs log_first..log_head. Runs wholly
    // before log_first (retention deleted their events) are deleted. Runs beyond `log_head` (a
    // log cut back or replaced), runs that are damaged, and everything after them, are deleted
    // too; so are all of them if they do not reach back to log_first. The log is the truth: the
    // caller re-inserts from indexed_through() + 1 (or log_first when that is 0).
    IdIndex(IdIndexOptions options, std::uint64_t log_first, std::uint64_t log_head);
    ~IdIndex();
    IdIndex(const IdIndex&) = delete;
    IdIndex& operator=(const IdIndex&) = delete;

    // Deletes the runs wholly before `first_seq` (retention removed their events).
    void drop_runs_before(std::uint64_t first_seq);

    // The last seq the runs cover (0: none); ids after it must be insert()ed.
    std::uint64_t indexed_through() const;

    // The seq of the event with this id, if it is in the log.
    std::optional<std::uint64_t> find(std::string_view id, const Confirm& confirm) const;

    // A newly appended id (seqs ascending, from 1).
    void insert(std::string_view id, std::uint64_t seq);
    // Forgets a recent id whose append failed (it never became durable).
    void erase_recent(std::string_view id);

    // Hands the recent ids to a thread of the index's own, to be written out as a run, once
    // there are recent_limit of them and the log is durable through the newest; takes in the
    // run it wrote at a later call (one run is written at a time, and lookups find its ids
    // meanwhile). Throws std::runtime_error when a run could not be written (its ids stay in
    // memory and a later call, a second on, tries again).
    void flush_if_full(std::uint64_t durable_seq);
    // Waits for the run being written, and takes it in (throws as flush_if_full does).
    void finish_writes();

    std::size_t recent_size() const;
    std::size_t run_count() const;
    std::uint64_t run_entries() const;
    std::uint64_t filter_bytes() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace op::broker

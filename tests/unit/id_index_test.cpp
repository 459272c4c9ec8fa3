// The broker's id index: exact answers from memory and from runs on disk, across reopening,
// and a damaged or stale run rebuilt from the log rather than trusted.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include "op/broker/id_index.hpp"

namespace fs = std::filesystem;
using op::broker::IdIndex;
using op::broker::IdIndexOptions;

namespace {

struct Scratch {
    fs::path dir = fs::temp_directory_path() /
                   ("op-id-index-" + std::to_string(::getpid()) + "-" +
                    std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    ~Scratch() { fs::remove_all(dir); }
};

std::string id_at(std::uint64_t seq) { return "event-" + std::to_string(seq * 7919); }

// The log as the index's confirmations see it: seq -> id.
struct FakeLog {
    std::map<std::uint64_t, std::string> ids;
    IdIndex::Confirm confirm(const std::string& id) const {
        return [this, id](std::uint64_t seq) {
            auto it = ids.find(seq);
            return it != ids.end() && it->second == id;
        };
    }
};

void append(IdIndex& index, FakeLog& log, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t seq = from; seq <= to; ++seq) {
        log.ids[seq] = id_at(seq);
        index.insert(id_at(seq), seq);
        index.flush_if_full(seq);
        index.finish_writes();  // each run written before the next id, for exact run bounds
    }
}

// Every id of seqs from..to is found at its seq.
void require_found(const IdIndex& index, const FakeLog& log, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t seq = from; seq <= to; ++seq) {
        REQUIRE_MESSAGE(index.find(id_at(seq), log.confirm(id_at(seq))) == seq, "seq ", seq);
    }
}

std::vector<fs::path> runs_in(const fs::path& dir) {
    std::vector<fs::path> runs;
    for (const auto& e : fs::directory_iterator(dir)) runs.push_back(e.path());
    std::sort(runs.begin(), runs.end());
    return runs;
}

}  // namespace

TEST_CASE("id index: every id found at its seq, from memory and from runs, and again after reopening") {
    Scratch scratch;
    FakeLog log;
    {
        IdIndex index({scratch.dir, 100}, 1, 0);
        append(index, log, 1, 1050);
        CHECK(index.run_count() == 10);
        CHECK(index.indexed_through() == 1000);
        CHECK(index.recent_size() == 50);
        for (std::uint64_t seq = 1; seq <= 1050; ++seq) {
            const auto found = index.find(id_at(seq), log.confirm(id_at(seq)));
            REQUIRE_MESSAGE(found.has_value(), "seq ", seq);
            CHECK(*found == seq);
        }
        CHECK_FALSE(index.find("never-appended", log.confirm("never-appended")).has_value());
    }
    // Reopened: the runs answer; the tail after them is the caller's to re-insert.
    IdIndex index({scratch.dir, 100}, 1, 1050);
    CHECK(index.indexed_through() == 1000);
    CHECK(index.run_entries() == 1000);
    for (std::uint64_t seq = 1; seq <= 1000; ++seq) {
        REQUIRE(index.find(id_at(seq), log.confirm(id_at(seq))) == seq);
    }
    CHECK_FALSE(index.find(id_at(1001), log.confirm(id_at(1001))).has_value());
}

TEST_CASE("id index: a hash match the log does not confirm is not a duplicate") {
    Scratch scratch;
    FakeLog log;
    IdIndex index({scratch.dir, 10}, 1, 0);
    append(index, log, 1, 20);
    const auto never = [](std::uint64_t) { return false; };
    CHECK_FALSE(index.find(id_at(3), never).has_value());  // in a run: needs the confirmation
    CHECK(index.find(id_at(3), log.confirm(id_at(3))) == 3);
}

TEST_CASE("id index: the filter grows with the runs and still answers for all") {
    Scratch scratch;
    FakeLog log;
    IdIndex index({scratch.dir, 16}, 1, 0);  // filter sized for 64 ids at first
    const auto first_filter_bytes = index.filter_bytes();
    append(index, log, 1, 5000);
    CHECK(index.run_entries() == 4992);
    // Rebuilt bigger, from every run, on the writer's thread: 16 bits an id, for twice the ids.
    CHECK(index.filter_bytes() > first_filter_bytes);
    CHECK(index.filter_bytes() * 8 >= 4992 * 16);
    for (std::uint64_t seq = 1; seq <= 5000; seq += 7) {
        REQUIRE(index.find(id_at(seq), log.confirm(id_at(seq))) == seq);
    }
    std::size_t false_hits = 0;
    for (int i = 0; i < 2000; ++i) {
        const std::string id = "absent-" + std::to_string(i);
        if (index.find(id, [&](std::uint64_t) {
                ++false_hits;
                return false;
            })) {
            FAIL("found an absent id");
        }
    }
    CHECK(false_hits < 20);  // the filter spares the disk for nearly every new id
}

TEST_CASE("id index: a damaged run and the runs after it are dropped, to be rebuilt from the log") {
    Scratch scratch;
    FakeLog log;
    {
        IdIndex index({scratch.dir, 100}, 1, 0);
        append(index, log, 1, 500);
    }
    auto runs = runs_in(scratch.dir);
    REQUIRE(runs.size() == 5);
    {
        std::fstream f(runs[2], std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(100);
        f.put('\x5a');
    }
    std::ofstream(scratch.dir / "leftover.tmp") << "half a run";
    IdIndex index({scratch.dir, 100}, 1, 500);
    CHECK(index.indexed_through() == 200);
    CHECK(runs_in(scratch.dir).size() == 2);
    CHECK(index.find(id_at(150), log.confirm(id_at(150))) == 150);
    CHECK_FALSE(index.find(id_at(250), log.confirm(id_at(250))).has_value());
}

TEST_CASE("id index: runs beyond the log's head (a log cut back or replaced) are dropped") {
    Scratch scratch;
    FakeLog log;
    {
        IdIndex index({scratch.dir, 100}, 1, 0);
        append(index, log, 1, 300);
    }
    IdIndex index({scratch.dir, 100}, 1, 250);
    CHECK(index.indexed_through() == 200);
    IdIndex empty({scratch.dir, 100}, 1, 0);
    CHECK(empty.indexed_through() == 0);
    CHECK(runs_in(scratch.dir).empty());
}

TEST_CASE("id index: after retention the runs of deleted events go, and the rest still answer") {
    Scratch scratch;
    FakeLog log;
    {
        IdIndex index({scratch.dir, 100}, 1, 0);
        append(index, log, 1, 550);
        index.drop_runs_before(301);  // the log now starts at 301
        CHECK(index.run_count() == 2);
        CHECK(index.find(id_at(420), log.confirm(id_at(420))) == 420);
    }
    CHECK(runs_in(scratch.dir).size() == 2);
    // Reopened on a log that starts at 301: runs 301..500 are kept.
    IdIndex index({scratch.dir, 100}, 301, 550);
    CHECK(index.indexed_through() == 500);
    CHECK(index.find(id_at(350), log.confirm(id_at(350))) == 350);
    // Runs that do not reach back to the log's first seq cannot be trusted to be complete.
    IdIndex gap({scratch.dir, 100}, 250, 550);
    CHECK(gap.indexed_through() == 0);
    CHECK(runs_in(scratch.dir).empty());
}

TEST_CASE("id index: a run is written on the index's own thread; its ids are found meanwhile, "
          "and ids keep coming") {
    Scratch scratch;
    FakeLog log;
    IdIndex index({scratch.dir, 100}, 1, 0);
    for (std::uint64_t seq = 1; seq <= 150; ++seq) {
        log.ids[seq] = id_at(seq);
        index.insert(id_at(seq), seq);
        if (seq == 100) index.flush_if_full(seq);  // hands seqs 1-100 over, returns at once
    }
    // Whether or not the run is on disk yet, every id answers, old and new.
    require_found(index, log, 1, 150);
    CHECK(index.recent_size() + index.run_entries() == 150);
    index.finish_writes();
    CHECK(index.run_count() == 1);
    CHECK(index.indexed_through() == 100);
    CHECK(index.recent_size() == 50);
    require_found(index, log, 1, 150);
}

TEST_CASE("id index: a run that cannot be written keeps its ids in memory, says why, and is "
          "written once it can be") {
    Scratch scratch;
    FakeLog log;
    IdIndex index({scratch.dir, 10}, 1, 0);
    // A directory where the run's temporary file must go: creating the file fails.
    const fs::path blocker =
        scratch.dir / "run-00000000000000000001-00000000000000000010.ids.tmp";
    fs::create_directories(blocker);
    for (std::uint64_t seq = 1; seq <= 10; ++seq) {
        log.ids[seq] = id_at(seq);
        index.insert(id_at(seq), seq);
    }
    index.flush_if_full(10);
    std::string error;
    try {
        index.finish_writes();
    } catch (const std::runtime_error& e) {
        error = e.what();
    }
    CHECK(error.find("cannot create") != std::string::npos);
    CHECK(error.find(blocker.filename().string()) != std::string::npos);
    CHECK(index.run_count() == 0);
    require_found(index, log, 1, 10);

    fs::remove(blocker);
    // Tried again no sooner than a second after the failure: poll, with a deadline.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (index.run_count() == 0 && std::chrono::steady_clock::now() < deadline) {
        index.flush_if_full(10);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        index.finish_writes();
    }
    REQUIRE(index.run_count() == 1);
    CHECK(index.indexed_through() == 10);
    CHECK(index.recent_size() == 0);
    require_found(index, log, 1, 10);
}

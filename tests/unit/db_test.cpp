// Unit tests of the services' SQLite layer where it departs from SQLite's defaults: how far a
// file database's WAL grows before it is copied back.
#include "op/store/db.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>

#include "support/harness.hpp"

namespace {

using op::store::Db;
using op::store::Transaction;

std::uintmax_t size_or_zero(const std::filesystem::path& p) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(p, ec);
    return ec ? 0 : n;
}

}  // namespace

TEST_CASE("Db: the WAL is copied back every ~200 pages, so a stream of commits never grows it "
          "to SQLite's 1,000") {
    op::test::TempDir dir("op-db-test");
    const auto path = dir.path() / "state.db";
    const auto wal = dir.path() / "state.db-wal";
    constexpr int kCommits = 2000;
    std::uintmax_t largest_wal = 0;
    std::int64_t page_size = 0;
    {
        Db db(path);
        auto& q = db.prepare("PRAGMA page_size");
        REQUIRE(q.bind().step());
        page_size = q.int64(0);
        q.reset();
        db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
        for (int i = 0; i < kCommits; ++i) {
            Transaction tx(db);
            // Most of a page each: every commit adds a page or two to the WAL.
            db.prepare("INSERT INTO t (k, v) VALUES (?, zeroblob(3000))").bind(i).run();
            tx.commit();
            largest_wal = std::max(largest_wal, size_or_zero(wal));
        }
    }
    const auto frame = static_cast<std::uintmax_t>(page_size) + 24;  // page + frame header
    // ~2,000+ pages written in all; at SQLite's default the WAL would reach 1,000 frames.
    CHECK(largest_wal > 100 * frame);
    CHECK(largest_wal < 300 * frame);

    Db reopened(path);
    auto& count = reopened.prepare("SELECT count(*) FROM t");
    REQUIRE(count.bind().step());
    CHECK(count.int64(0) == kCommits);
}

#include "op/store/db.hpp"

#include <fmt/format.h>

#include <mutex>

namespace op::store {
namespace {
constexpr int kWalCheckpointPages = 200;

void check(sqlite3* db, int rc, std::string_view what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        throw DbError(fmt::format("sqlite: {} failed: {}", what, sqlite3_errmsg(db)),
                      sqlite3_extended_errcode(db));
    }
}

}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
    check(db_,
          sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr),
          fmt::format("preparing \"{}\"", sql));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

bool Statement::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    check(db_, rc, fmt::format("running \"{}\"", sqlite3_sql(stmt_)));
    return false;
}

void Statement::run() {
    while (step()) {
    }
}

std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
             : std::string();
}

bool Statement::is_null(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

void Statement::bind_one(int index, std::int64_t value) {
    check(db_, sqlite3_bind_int64(stmt_, index, value), "binding an integer");
}

void Statement::bind_one(int index, std::string_view value) {
    check(db_,
          sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_TRANSIENT),
          "binding text");
}

void Statement::bind_one(int index, std::nullptr_t) {
    check(db_, sqlite3_bind_null(stmt_, index), "binding null");
}

Db::Db(const std::filesystem::path& path, Durability durability) {
    // Debian's SQLite counts every allocation it makes for sqlite3_status() under one global
    // mutex; nothing here reads those counts, and with them off each statement allocates
    // without that lock. Possible only before SQLite initializes, so once per process.
    //
    // Statement journals (what a SAVEPOINT keeps to roll back to; the runner opens one per
    // event handled) are kept in memory in SQLite's small default chunks. With the default
    // 64 KiB spill threshold each journal is one 64 KiB chunk, malloc'd at the savepoint and
    // freed at its release; at the top of the heap that was a brk(2) up and a brk(2) down per
    // event (payment: ~2,600/s at 64 clients, 31 % of its CPU, each shrink a TLB shootdown
    // across the process's threads). A journal holds the pages one statement or event touches:
    // a few here; a statement touching many (a schema migration) holds them in memory rather
    // than spilling to a temporary file.
    static std::once_flag configured;
    std::call_once(configured, [] {
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, -1);
    });
    const int rc = sqlite3_open_v2(path.c_str(), &db_,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                       SQLITE_OPEN_NOMUTEX,
                                   nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        throw DbError(fmt::format("cannot open database {}: {} (check the data dir exists and "
                                  "is writable)",
                                  path.string(), msg));
    }
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    // 16 MiB of page cache instead of SQLite's 2 MiB: past that the order read model re-read
    // its pages from the file (a pread(2) each) on every commit.
    exec("PRAGMA cache_size=-16384");
    // Debian builds SQLite with secure_delete on, which zeroes every deleted index cell; an
    // index entry moves on each status change here, and nothing deleted is secret.
    exec("PRAGMA secure_delete=OFF");
    exec(durability == Durability::EveryCommit ? "PRAGMA synchronous=FULL"
                                               : "PRAGMA synchronous=NORMAL");
    // The WAL is copied back into the database (a checkpoint: an fsync of the WAL, the copy,
    // an fsync of the database) every 200 pages instead of SQLite's 1,000. The copy runs inside
    // the commit that crosses the mark, and its fsyncs share the disk with the broker's: at
    // 1,000 pages each was a 4 MB burst that held this service for 10-45 ms and the broker's
    // group commits behind it for up to 8 ms, which was the 99th percentile of /place-order at
    // 64 clients. Smaller checkpoints copy a page written often more often, but make no burst
    // (64 clients, alternating runs: p99 33.1 -> 26.5 ms, throughput unchanged).
    exec(fmt::format("PRAGMA wal_autocheckpoint={}", kWalCheckpointPages));
    exec("CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), "
         "seq INTEGER NOT NULL)");
}

Db::~Db() {
    statements_.clear();  // finalize before close, or close fails with SQLITE_BUSY
    sqlite3_close(db_);
}

void Db::exec(std::string_view sql) {
    char* err = nullptr;
    const std::string text(sql);
    if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errmsg(db_);
        sqlite3_free(err);
        throw DbError(fmt::format("sqlite: \"{}\" failed: {}", sql, msg),
                      sqlite3_extended_errcode(db_));
    }
}

Statement& Db::prepare(const std::string& sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
        it = statements_.emplace(sql, std::make_unique<Statement>(db_, sql)).first;
    }
    return *it->second;
}

std::uint64_t Db::checkpoint() {
    auto& q = prepare("SELECT seq FROM checkpoint WHERE id = 1");
    q.bind();
    const std::uint64_t seq = q.step() ? static_cast<std::uint64_t>(q.int64(0)) : 0;
    q.reset();
    return seq;
}

void Db::set_checkpoint(std::uint64_t seq) {
    prepare("INSERT INTO checkpoint (id, seq) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq")
        .bind(seq)
        .run();
}

Transaction::Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
    if (!done_) {
        try {
            db_.exec("ROLLBACK");
        } catch (...) {  // NOLINT(bugprone-empty-catch): a failed rollback leaves nothing to undo
        }
    }
}

void Transaction::commit() {
    db_.exec("COMMIT");
    done_ = true;
}

}  // namespace op::store

// A thin RAII layer over SQLite for the services' state: one connection, prepared statements
// cached by SQL text, and transactions that roll back unless committed. Errors throw DbError
// with SQLite's message. Not thread-safe: one Db per thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace op::store {

class DbError : public std::runtime_error {
public:
    explicit DbError(const std::string& message, int code = SQLITE_ERROR)
        : std::runtime_error(message), code_(code) {}
    int code() const { return code_; }  // SQLite's extended result code
    // A constraint failed: the data was refused, the database itself is fine.
    bool refused_data() const { return (code_ & 0xff) == SQLITE_CONSTRAINT; }

private:
    int code_;
};

class Statement {
public:
    Statement(sqlite3* db, std::string_view sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Binds parameters 1..N in order, resetting any previous run first.
    template <class... Args>
    Statement& bind(const Args&... args) {
        reset();
        int index = 1;
        (bind_one(index++, args), ...);
        return *this;
    }

    bool step();  // true while a row is available
    void run();   // steps to completion, expecting no rows
    void reset();

    std::int64_t int64(int column) const;
    std::string text(int column) const;
    bool is_null(int column) const;

private:
    void bind_one(int index, std::int64_t value);
    void bind_one(int index, int value) { bind_one(index, static_cast<std::int64_t>(value)); }
    void bind_one(int index, std::uint64_t value) {
        bind_one(index, static_cast<std::int64_t>(value));
    }
    void bind_one(int index, std::string_view value);
    void bind_one(int index, const std::string& value) { bind_one(index, std::string_view(value)); }
    void bind_one(int index, const char* value) { bind_one(index, std::string_view(value)); }
    void bind_one(int index, std::nullptr_t);

    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

enum class Durability {
    // WAL with synchronous=NORMAL: a power cut may lose the last commits, which is safe where
    // the state is rebuilt by replaying the broker's log from the checkpoint that survived.
    ReplayableFromLog,
    // WAL with synchronous=FULL: every commit is on disk when it returns.
    EveryCommit,
};

class Db {
public:
    // Opens (creating) the database; ":memory:" for tests.
    explicit Db(const std::filesystem::path& path,
                Durability durability = Durability::ReplayableFromLog);
    ~Db();
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    void exec(std::string_view sql);  // runs one or more statements, no results
    Statement& prepare(const std::string& sql);  // cached: valid for the Db's lifetime

    // The one checkpoint of a service: the last seq whose effects are in this database.
    std::uint64_t checkpoint();
    void set_checkpoint(std::uint64_t seq);

    sqlite3* handle() { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() ran.
class Transaction {
public:
    explicit Transaction(Db& db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Db& db_;
    bool done_ = false;
};

}  // namespace op::store

#include "inspect.hpp"

#include <sqlite3.h>

#include <fstream>
#include <stdexcept>

namespace op::test {
namespace {

// nullopt with `error` set, or the value.
std::optional<std::int64_t> query(const std::filesystem::path& db_path, const std::string& sql,
                                  std::string& error) {
    if (!std::filesystem::exists(db_path)) {
        error = db_path.string() + " does not exist";
        return std::nullopt;
    }
    sqlite3* db = nullptr;
    std::optional<std::int64_t> out;
    if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        error = std::string("cannot open ") + db_path.string() + ": " + sqlite3_errmsg(db);
        sqlite3_close(db);
        return std::nullopt;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
        error = sql + ": " + sqlite3_errmsg(db);
    } else if (sqlite3_step(stmt) != SQLITE_ROW) {
        error = sql + ": no row";
    } else {
        out = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
}

}  // namespace

std::int64_t query_int(const std::filesystem::path& db_path, const std::string& sql) {
    std::string error;
    const auto v = query(db_path, sql, error);
    if (!v) throw std::runtime_error("query_int: " + error);
    return *v;
}

std::optional<std::int64_t> try_query_int(const std::filesystem::path& db_path,
                                          const std::string& sql) {
    std::string error;
    return query(db_path, sql, error);
}

std::uint64_t checkpoint_of(const System& system, const std::string& service) {
    const auto seq = try_query_int(system.data_dir() / (service + ".db"),
                                   "SELECT seq FROM checkpoint WHERE id = 1");
    return seq ? static_cast<std::uint64_t>(*seq) : 0;
}

std::vector<nlohmann::json> export_log(const System& system) {
    const auto path = system.data_dir() / "export.ndjson";
    Process exporter(op::test::with_args({std::string(OP_BIN_DIR) + "/broker", "export", "--live",
                      system.live_endpoint(), "--replay", system.replay_endpoint(), "-o",
                      path.string()}, system.security_args("operator")),
                     system.data_dir() / "logs" / "export.log");
    const auto status = exporter.wait_for(30s);
    if (status != std::optional<int>(0)) {
        throw std::runtime_error("broker export failed (" +
                                 (status ? describe_status(*status) : std::string("timed out")) +
                                 "): " + tail_file(system.data_dir() / "logs" / "export.log"));
    }
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
}

}  // namespace op::test

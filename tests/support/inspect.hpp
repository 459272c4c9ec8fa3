// Reading a running System's state the way the tests' checks need it: one integer from a
// service's SQLite database (read-only, beside the running service: WAL allows it) and the
// broker's whole log through `broker export`. Failures throw std::runtime_error with the cause.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.hpp"

namespace op::test {

// The first column of the first row of `sql`; throws if the database, the table or the row
// is missing.
std::int64_t query_int(const std::filesystem::path& db_path, const std::string& sql);
// The same, nullopt instead of throwing (a service that has not created its database yet).
std::optional<std::int64_t> try_query_int(const std::filesystem::path& db_path,
                                          const std::string& sql);
// A service's checkpoint (the last seq it applied), 0 if it has none yet.
std::uint64_t checkpoint_of(const System& system, const std::string& service);

// Every event in the broker's log, in seq order, as `broker export` writes them.
std::vector<nlohmann::json> export_log(const System& system);

}  // namespace op::test

// What a run did, read back from the broker's log once the load has stopped: the full-chain
// latency of every order (OrderPlaced to CustomerNotified), whether every order reached a
// terminal state, whether each HTTP answer agrees with the outcome the log records, and how
// much stock the log says was reserved.
//
// Full-chain latency is taken from the events' `ts`, which each publisher stamps just before
// it publishes (and the broker appends) the event: it spans OrderPlaced's append through
// CustomerNotified's publish, i.e. every hop but the last event's own durable append.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "http_load.hpp"
#include "latency.hpp"
#include "op/bus/endpoints.hpp"

namespace op::bench {

// The broker's head seq now (waits for the subscriber to hear it); throws if the broker does
// not answer within `timeout`.
std::uint64_t log_head(const bus::Endpoints& endpoints,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct ChainReport {
    std::uint64_t orders = 0;     // OrderPlaced in the window
    std::uint64_t terminal = 0;   // ... of which have a CustomerNotified
    std::uint64_t succeeded = 0;  // CustomerNotified with outcome success
    Percentiles full_chain;       // of the terminal orders
    // The same span hop by hop (OrderPlaced -> PaymentVerified -> StockReserved -> Shipped ->
    // CustomerNotified), each from one event's `ts` to the next one's, over the orders that
    // went the whole success chain: where the full chain's time goes.
    std::vector<std::pair<std::string, Percentiles>> hops;
    double terminal_per_s = 0;    // terminal orders / (last CustomerNotified - first OrderPlaced)
    std::map<std::string, std::int64_t> reserved;  // StockReserved quantity per item
    std::uint64_t answers_checked = 0;
    std::uint64_t disagreements = 0;       // answer says one outcome, the log another
    std::uint64_t answered_not_found = 0;  // an answered order with no terminal event in the log
    std::vector<std::string> problems;     // a few examples, for the report
    double check_s = 0;                    // how long reading the log took
};

// Reads events from `from_seq` on until every OrderPlaced seen has its CustomerNotified (or
// `deadline` passes), then checks `answers` against the log.
ChainReport check_chain(const bus::Endpoints& endpoints, std::uint64_t from_seq,
                        const std::vector<Answer>& answers, std::chrono::milliseconds deadline);

nlohmann::json to_json(const ChainReport& r);

}  // namespace op::bench

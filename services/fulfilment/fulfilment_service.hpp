// Fulfilment: packs and ships every order whose stock is reserved (simulated: a tracking id,
// derived from the reservation event so a redelivery ships under the same id).
#pragma once

#include <string>
#include <vector>

#include "op/events/event.hpp"
#include "op/store/db.hpp"

namespace op::fulfilment {

class FulfilmentService {
public:
    explicit FulfilmentService(store::Db& db);

    static std::vector<events::EventType> topics();
    std::vector<events::Event> handle(const events::Event& event, const std::string& now);

private:
    store::Db& db_;
};

}  // namespace op::fulfilment

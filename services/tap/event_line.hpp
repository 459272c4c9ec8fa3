// How the tap shows one event to a person: a short summary of what happened, and a one-line
// rendering with time, seq, topic and order, coloured by outcome when asked. Pure functions.
#pragma once

#include <string>
#include <utility>

#include "op/events/event.hpp"

namespace op::tap {

enum class Tone { Neutral, Good, Bad, Compensation };

// "payment verified 1000.00", "out of stock: laptop x2 (0 left)"
std::string summary(const events::Event& event);
Tone tone(const events::Event& event);

// The ANSI escapes that start and end text of this tone; empty strings without colour.
std::pair<const char*, const char*> paint(Tone tone, bool colour);

// "18:07:25.713764  #9      OutOfStock        6463cbcd7d83  out of stock: tablet x1 (0 left)"
std::string line(const events::Event& event, bool colour);

}  // namespace op::tap

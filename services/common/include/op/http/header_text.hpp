// The text rules HTTP/1.x heads share, for the order service's request reader and bench's answer
// reader: header names compare case-insensitively, and values carry optional whitespace.
#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace op::http {

inline bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

// Without the spaces and tabs around it (RFC 9110's OWS).
inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace op::http

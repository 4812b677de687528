// Small text helpers for messages.
#pragma once

#include <cstddef>
#include <string>

namespace presso {

// Levenshtein distance, for "did you mean" hints on misspelt keys and tensor names.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace presso

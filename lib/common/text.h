// Small text helpers for messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace presso {

// `text` cut to at most `max_chars` bytes (never inside a UTF-8 sequence) with "..." appended
// when it is longer, so that a hostile value (a 40 kB regex) cannot flood a message.
std::string abbreviate(std::string_view text, size_t max_chars = 80);

// Levenshtein distance, for "did you mean" hints on misspelt keys and tensor names.
size_t edit_distance(const std::string& a, const std::string& b);

// Lines that differ only in one block index (the digits of a ".N." in a tensor name) become one
// line naming the indices, so a problem of every block reads once:
// "model.layers.{0-5}.self_attn.q_proj has 384 columns". Order of first appearance is kept.
std::vector<std::string> fold_block_indices(const std::vector<std::string>& lines);

}  // namespace presso

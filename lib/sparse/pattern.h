// The structure of a pruning mask: unstructured, or N:M (N zeros in every M consecutive input
// columns of each row). Torch-free.
#pragma once

#include <cstdint>
#include <string>

namespace presso {

// n = 0 (and m = 0): unstructured, the sparsity is chosen separately. Otherwise every group of m
// consecutive input columns of each output row has exactly n pruned weights, so the pattern
// alone fixes the sparsity n/m: "2:4" keeps 2 of 4 (0.5), "4:8" keeps 4 of 8, "1:4" keeps 3 of 4.
// This is the convention of SparseGPT's prunen:prunem and llm-compressor's mask_structure
// (N zeros per M); for 2:4 it coincides with NVIDIA's "2 non-zeros per 4".
struct SparsityPattern {
  int n = 0;
  int m = 0;

  bool structured() const { return n > 0; }
  // n/m, or 0 when unstructured.
  double sparsity() const { return structured() ? static_cast<double>(n) / m : 0.0; }
  bool operator==(const SparsityPattern& other) const { return n == other.n && m == other.m; }
  bool operator!=(const SparsityPattern& other) const { return !(*this == other); }
};

// "unstructured" or "0:0" (llm-compressor's spelling) -> {0, 0}; "N:M" with 1 <= N < M ->
// {N, M}. Anything else is a UserError that quotes the text and says what would be valid.
SparsityPattern parse_sparsity_pattern(const std::string& text);

// "unstructured" or "N:M"; parse_sparsity_pattern(sparsity_pattern_name(p)) == p.
std::string sparsity_pattern_name(const SparsityPattern& pattern);

// UserError unless the pattern is unstructured ({0, 0}) or 1 <= n < m.
void validate_pattern(const SparsityPattern& pattern);

// As above, and for an N:M pattern that m divides the input width `in_features` of the weight
// named `tensor_name` (named in the message when not empty).
void validate_pattern(const SparsityPattern& pattern, int64_t in_features,
                      const std::string& tensor_name);

}  // namespace presso

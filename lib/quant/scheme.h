// The integer weight quantization scheme: bit width, group size, symmetry. Torch-free.
#pragma once

#include <cstdint>
#include <string>

namespace presso {

struct QuantScheme {
  int bits = 4;          // 2..8
  int group_size = 128;  // columns sharing one scale; -1 = one group per output row
  bool symmetric = true;
};

// Signed code range of compressed-tensors' int types: [-2^(b-1), 2^(b-1) - 1].
inline int64_t quant_min(int bits) { return -(int64_t{1} << (bits - 1)); }
inline int64_t quant_max(int bits) { return (int64_t{1} << (bits - 1)) - 1; }
// Offset from a signed code to the unsigned code every packed layout stores.
inline int64_t unsigned_offset(int bits) { return int64_t{1} << (bits - 1); }

// Throws UserError listing every problem of the scheme on its own (bits, group size).
void validate_scheme(const QuantScheme& scheme);

// As above, and also that the scheme fits a weight with `in_features` columns: the group size
// must divide it. `tensor_name`, when not empty, is named in the message.
void validate_scheme(const QuantScheme& scheme, int64_t in_features,
                     const std::string& tensor_name);

// Columns per group for a weight of `in_features` columns (resolves -1). Assumes a valid scheme.
int64_t effective_group_size(const QuantScheme& scheme, int64_t in_features);
int64_t group_count(const QuantScheme& scheme, int64_t in_features);

// "4-bit asymmetric group 128", "8-bit symmetric per channel".
std::string scheme_description(const QuantScheme& scheme);

}  // namespace presso

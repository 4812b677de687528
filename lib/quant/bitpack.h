// Dense little-endian bit packing of unsigned b-bit values into int32 words, the primitive under
// compressed-tensors' pack-quantized and GPTQ's qweight/qzeros (and, after AWQ's column
// interleave, AWQ's too).
//
// Value i of a row occupies bits [i·b, i·b + b) of the row's bit string, and word k holds bits
// [32k, 32k + 32) of it, least significant bit first. So 32/b values per word when b divides 32,
// and for b = 3, 5, 6, 7 some values straddle two words (32 values fill exactly b words).
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace presso {

// values: [rows, n] integer tensor with every value in [0, 2^bits); bits in 1..8.
// Returns [rows, ceil(n·bits/32)] int32 (the words' bit patterns, so values ≥ 2^31 read negative);
// unused high bits of a row's last word are zero.
torch::Tensor pack_lsb_first(const torch::Tensor& values, int bits);

// Inverse of pack_lsb_first: words [rows, ≥ ceil(count·bits/32)] int32 → [rows, count] int32.
torch::Tensor unpack_lsb_first(const torch::Tensor& words, int bits, int64_t count);

}  // namespace presso

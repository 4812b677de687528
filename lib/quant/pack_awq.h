// AutoAWQ GEMM checkpoint tensors (`quant_method: awq`, `version: gemm`). Layout facts checked
// against AutoAWQ awq/modules/linear/gemm.py (WQLinear_GEMM.__init__/from_linear) and
// awq/utils/packing_utils.py (AWQ_ORDER, AWQ_REVERSE_ORDER, dequantize_gemm), main of 2025-05-11;
// see docs/formats.md.
//
// 4 bits only. Codes and zero points are unsigned (u = q + 8, z = zp + 8) and stored as they are:
// unlike GPTQ v1 there is no −1, so every zero point in [0, 15] is representable. Eight values of
// consecutive output columns share a word in the interleaved order [0, 2, 4, 6, 1, 3, 5, 7]:
// nibble i (bits 4i..4i+3) holds column 8c + order[i] of word c.
#pragma once

#include <torch/types.h>

#include <string>

#include "lib/quant/quantize.h"

namespace presso {

struct AwqPacked {
  torch::Tensor qweight;  // [in, out/8] int32: u packed along the output dimension, interleaved
  torch::Tensor qzeros;   // [n_groups, out/8] int32: z, same packing
  torch::Tensor scales;   // [n_groups, out] fp16
};

// Requires 4 bits, out % 8 == 0, consecutive groups (AWQ has no g_idx), and scales exact in
// fp16 (GridOptions::scale_dtype = torch::kFloat16); UserError / InternalError otherwise.
AwqPacked pack_awq_gemm(const QuantizedWeight& weight, const std::string& tensor_name = "");

// `scheme` comes from the checkpoint's quantization_config (bits 4, group_size, zero_point).
QuantizedWeight unpack_awq_gemm(const AwqPacked& packed, const QuantScheme& scheme,
                                const std::string& tensor_name = "");

}  // namespace presso

// GPTQ checkpoint tensors (`quant_method: gptq`, AutoGPTQ / GPTQModel `gptq` (v1) and `gptq_v2`
// formats, loaded by vLLM, GPTQModel and transformers). Layout facts checked against AutoGPTQ
// auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py (QuantLinear.__init__/pack/forward, main of
// 2025-04-11), GPTQModel gptqmodel/utils/model.py (convert_gptq_v1_to_v2_format_module, main of
// 2026-08-23) and vLLM csrc/quantization/gptq/q_gemm.cu; see docs/formats.md.
//
// Codes are unsigned, u = q + 2^(b−1), with unsigned zero point z = zp + 2^(b−1), so
// (u − z)·s equals our (q − zp)·s; a symmetric grid gets z = 2^(b−1), as GPTQ's own symmetric
// quantizer sets it.
//
// The v1 off-by-one: v1 stores z − 1 and every loader adds 1 back after extracting b bits. z = 0
// would be stored as −1, i.e. the all-ones b-bit field, which vLLM's kernels read as 2^b (not 0)
// and GPTQModel's packed-word +0x11..1 conversion carries into the neighbouring zero point;
// AutoGPTQ's own packer even ORs the 32-bit −1 over the fields above it. No loader recovers it,
// so pack_gptq_v1 refuses a zero point of 0 (UserError) instead of writing a file that silently
// dequantizes wrong. Grids meant for GPTQ v1 avoid it up front with
// GridOptions::avoid_qmin_zero_point, which moves the affected asymmetric groups to z = 1 with a
// slightly wider scale (only groups whose minimum is above −scale/2, i.e. almost non-negative).
//
// GPTQ v2 (`checkpoint_format: gptq_v2`, GPTQModel's own format; vLLM's gptq kernel reads it with
// use_v2_format) is the same but stores z itself, so every zero point in [0, 2^b − 1] is
// representable. GPTQModel loads asymmetric checkpoints only in v2 or from its own v1 writer.
#pragma once

#include <torch/types.h>

#include <string>

#include "lib/quant/quantize.h"

namespace presso {

struct GptqPacked {
  torch::Tensor qweight;  // [in·b/32, out] int32: u dense LSB first along the input dimension
  torch::Tensor qzeros;   // [n_groups, out·b/32] int32: z − 1 dense along the output dimension
  torch::Tensor scales;   // [n_groups, out] fp16
  torch::Tensor g_idx;    // [in] int32: group of each input column
};

// Bits 2, 3, 4 or 8 (the widths AutoGPTQ's QuantLinear and vLLM's gptq kernels accept); in·b and
// out·b must be multiples of 32 (whole words). Scales must be exact in fp16 (grid computed with
// GridOptions::scale_dtype = torch::kFloat16).
GptqPacked pack_gptq_v1(const QuantizedWeight& weight, const std::string& tensor_name = "");
// As pack_gptq_v1, but qzeros holds z (no −1), so a zero point of 0 is stored too.
GptqPacked pack_gptq_v2(const QuantizedWeight& weight, const std::string& tensor_name = "");

// Reads the tensors as vLLM does (zero point = stored field + 1, no wrap), so a wrapped zero
// point of a foreign checkpoint comes back as 2^(b−1) + 1 signed, outside [q_min, q_max], and
// dequantize() reproduces what the serving engine computes. `scheme` comes from the checkpoint's
// quantize_config (bits, group_size, sym).
QuantizedWeight unpack_gptq_v1(const GptqPacked& packed, const QuantScheme& scheme,
                               const std::string& tensor_name = "");
// Reads qzeros as z itself (GPTQ v2).
QuantizedWeight unpack_gptq_v2(const GptqPacked& packed, const QuantScheme& scheme,
                               const std::string& tensor_name = "");

}  // namespace presso

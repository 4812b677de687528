// Slow, obvious scalar-loop versions of the quantization kernels and packed layouts, written
// straight from the definitions in grid.h, bitpack.h and docs/formats.md. Tests compare the fast
// tensor versions against these; nothing else should call them. The grid of each group is
// group_grid.h's scalar rule, which the fused GPTQ sweeps share, so compute_grid_ref checks that
// rule against the tensor grid of grid.h.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>

#include "lib/quant/gptq.h"
#include "lib/quant/grid.h"
#include "lib/quant/pack_awq.h"
#include "lib/quant/pack_compressed_tensors.h"
#include "lib/quant/pack_gptq.h"
#include "lib/quant/quantize.h"

namespace presso {

torch::Tensor pack_lsb_first_ref(const torch::Tensor& values, int bits);
torch::Tensor unpack_lsb_first_ref(const torch::Tensor& words, int bits, int64_t count);

QuantGrid compute_grid_ref(const torch::Tensor& weight, const QuantScheme& scheme,
                           const GridOptions& options = {});
QuantizedWeight quantize_ref(const torch::Tensor& weight, const QuantGrid& grid,
                             const QuantScheme& scheme,
                             const std::optional<torch::Tensor>& g_idx = std::nullopt);
torch::Tensor dequantize_ref(const QuantizedWeight& weight);

CompressedTensorsPacked pack_compressed_tensors_ref(const QuantizedWeight& weight,
                                                    torch::ScalarType scale_dtype);
GptqPacked pack_gptq_v1_ref(const QuantizedWeight& weight);
AwqPacked pack_awq_gemm_ref(const QuantizedWeight& weight);

// GPTQ as the direct OBS sweep of the paper's section 3: for each column in visiting order, round
// it on its grid, err = (w − q)/U_jj with U the upper Cholesky factor of the damped H⁻¹, and
// update every later column at once (no lazy batching); scalar loops, on the CPU. The grids,
// dead inputs, act order, damping retries and mask follow gptq.h; options.block_size matters
// only for when the original reads a dynamic group's weights (the state at the start of the
// group's block). When `tie_distance` is given it receives [out, in] fp32, original column
// order: the distance of each weight's clamped w/s + z from the nearest rounding boundary
// (k + 0.5), so a test can tell a code flipped by fp32 rounding from a wrong one.
GptqResult gptq_quantize_ref(const torch::Tensor& weight, const torch::Tensor& hessian,
                             const GptqOptions& options,
                             const std::optional<torch::Tensor>& mask = std::nullopt,
                             torch::Tensor* tie_distance = nullptr);

}  // namespace presso

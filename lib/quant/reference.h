// Slow, obvious scalar-loop versions of the quantization kernels and packed layouts, written
// straight from the definitions in grid.h, bitpack.h and docs/formats.md. Tests compare the fast
// tensor versions against these; nothing else should call them.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>

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

}  // namespace presso

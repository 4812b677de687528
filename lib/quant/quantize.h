// A weight quantized on a grid: signed codes plus the grid, the form every packed layout is
// written from and read back into. Round-to-nearest quantization and dequantization.
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>

#include "lib/quant/grid.h"
#include "lib/quant/scheme.h"

namespace presso {

struct QuantizedWeight {
  torch::Tensor q;           // [out, in] int8 signed codes in [q_min, q_max]
  torch::Tensor scale;       // [out, n_groups] fp32
  torch::Tensor zero_point;  // [out, n_groups] int32 signed; zeros when symmetric
  // [in] int32 group of each column, present only when it differs from column / group_size
  // (GPTQ's act-order with `group` ordering); absent means consecutive groups.
  std::optional<torch::Tensor> g_idx;
  QuantScheme scheme;
};

// Codes of weight [out, in] on `grid` (from compute_grid, or fixed by the caller).
QuantizedWeight quantize(const torch::Tensor& weight, const QuantGrid& grid,
                         const QuantScheme& scheme,
                         const std::optional<torch::Tensor>& g_idx = std::nullopt,
                         const std::string& tensor_name = "");

// Round to nearest on the min/max (or MSE-searched) grid of the weight itself.
QuantizedWeight quantize_rtn(const torch::Tensor& weight, const QuantScheme& scheme,
                             const GridOptions& options = {}, const std::string& tensor_name = "");

// (q − zero_point)·scale as fp32 [out, in].
torch::Tensor dequantize(const QuantizedWeight& weight);

// Group of every column [in] int32: g_idx when present, else column / group_size.
torch::Tensor column_groups(const QuantizedWeight& weight);

// Throws InternalError unless the tensors' shapes, dtypes and code range agree with the scheme;
// the packers call it so that a malformed weight never reaches a file.
void check_quantized_weight(const QuantizedWeight& weight, const std::string& tensor_name);

}  // namespace presso

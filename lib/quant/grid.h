// The quantization grid of a weight: one scale and zero point per output row and column group,
// from the group's min/max as compressed-tensors computes it, optionally with llm-compressor's
// MSE-optimal range shrinking.
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>

#include "lib/quant/group_grid.h"
#include "lib/quant/scheme.h"

namespace presso {

struct QuantGrid {
  torch::Tensor scale;       // [out, n_groups] fp32
  torch::Tensor zero_point;  // [out, n_groups] int32 signed codes; zeros when symmetric
};

// Grid search over shrunk ranges [p·min, p·max], p = 1 − i/grid for i in [0, int(maxshrink·grid)),
// keeping per group the candidate with the smallest Σ|x − dq(q(x))|^norm. Defaults are
// llm-compressor's MemorylessMSEObserver (src/llmcompressor/observers/mse.py, main of
// 2026-08-22: maxshrink 0.20, patience 5, grid 100, norm 2.4; the loop is _grid_search_eager in
// observers/mse_quant.py). The GPTQ repo's `mse` option (IST-DASLab/gptq quant.py) is
// maxshrink 0.8, grid 100, norm 2.4 with no early stop: patience <= 0.
struct MseSearch {
  double maxshrink = 0.20;
  int patience = 5;  // stop after this many steps in a row that improve no group; <= 0: never
  double grid = 100.0;
  double norm = 2.4;
};

struct GridOptions {
  // Dtype the scales will be stored in (fp16 for GPTQ and AWQ, the weight's dtype for
  // compressed-tensors). Scales are rounded to it before zero points and codes are derived, so
  // the stored file dequantizes to exactly what the codes were chosen against.
  torch::ScalarType scale_dtype = torch::kFloat32;
  // GPTQ v1 stores zero − 1, so an unsigned zero point of 0 cannot be stored (see pack_gptq.h).
  // When set, an asymmetric group whose zero point would be q_min gets zero point q_min + 1 and
  // the scale max/(2^b − 2) instead, which still covers [min, max] (min > −scale/2 there).
  bool avoid_qmin_zero_point = false;
  std::optional<MseSearch> mse;  // none: plain min/max (memoryless min-max observer)
  // [in] >= 0, or undefined: in the MSE search each column's error counts this much (the mean x²
  // of its input channel: llama.cpp's importance matrix, llm-compressor's imatrix_mse observer),
  // so the range fits the columns whose inputs are large.
  torch::Tensor mse_column_weight;
};

// Grid for weight [out, in] under `scheme` (validated here; `tensor_name` names the weight in
// errors). Groups are consecutive column ranges.
QuantGrid compute_grid(const torch::Tensor& weight, const QuantScheme& scheme,
                       const GridOptions& options = {}, const std::string& tensor_name = "");

// `options` for the grid of columns [c1, c2) of a weight whose columns were reordered by `perm`
// (GPTQ's act order; nullopt: not reordered): mse_column_weight follows the columns.
GridOptions grid_options_for_columns(const GridOptions& options,
                                     const std::optional<torch::Tensor>& perm, int64_t c1,
                                     int64_t c2);

// Grid from per-group ranges: min, max [out, n_groups] fp32 (any sign; clamped so that
// min <= 0 <= max, as 0 must be exactly representable). Ignores options.mse.
QuantGrid grid_from_range(const torch::Tensor& min, const torch::Tensor& max,
                          const QuantScheme& scheme, const GridOptions& options = {});

// Elementwise, broadcasting: codes q = clamp(round_half_even(x / scale + zero_point), q_min,
// q_max) as fp32 integral values, and (q − zero_point)·scale.
torch::Tensor quantize_values(const torch::Tensor& x, const torch::Tensor& scale,
                              const torch::Tensor& zero_point, int bits);
torch::Tensor dequantize_values(const torch::Tensor& q, const torch::Tensor& scale,
                                const torch::Tensor& zero_point);

// The scalar form of grid_from_range's rule for `scheme` and `options` (group_grid.h), for
// kernels that compute group grids themselves; options.mse has no scalar form and is ignored.
// UserError for an invalid scheme or scale dtype.
group_grid::GridRule group_grid_rule(const QuantScheme& scheme, const GridOptions& options);

// What compressed-tensors substitutes for a zero scale: finfo(dtype).eps of the scale's dtype
// (compressed_tensors/quantization/utils/helpers.py, _get_dtype_eps, 0.18.0).
float zero_scale_substitute(torch::ScalarType scale_dtype);

}  // namespace presso

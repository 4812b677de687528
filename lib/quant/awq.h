// AWQ (Lin et al., 2023, "Activation-aware Weight Quantization"): the math of its two searches as
// the original computes them (mit-han-lab/llm-awq, awq/quantize/auto_scale.py and auto_clip.py at
// d6e797a), as free functions on tensors. passes/awq.cpp runs them on a block's modules.
//
// Scale search: a per-input-channel scale s, s_j = mean|x_j|^α (llm-awq) or
// mean|x_j|^α / (w̄_j^(1−α) + 1e-4) (AutoAWQ's and llm-compressor's duo scaling), for α on a grid;
// the weights become Q(W·diag(s))·diag(1/s) and the α whose module output is closest wins.
// Clip search: per output row and column group, the max |w| shrunk over a grid so that the
// group's part of the output, x·Q(clamp(w)), is closest to x·w.
#pragma once

#include <torch/types.h>

#include "lib/quant/grid.h"
#include "lib/quant/scheme.h"

namespace presso {

// get_weight_scale: |W| over the max |W| of its row's column group, averaged over rows.
// weight [out, in] (a scale group's consumers concatenated along rows) -> [in] fp32.
// group_size -1: one group per row.
torch::Tensor awq_weight_magnitude(const torch::Tensor& weight, int64_t group_size);

// One candidate scale [in] for grid point `ratio` (α) from the mean |x| per channel `x_mean` [in]
// and awq_weight_magnitude `w_mean` [in]: clamped at 1e-4, then divided by √(max·min) so that it
// is centred on 1 (auto_scale.py, _search_module_scale). Without duo scaling w_mean is unused.
torch::Tensor awq_candidate_scale(const torch::Tensor& x_mean, const torch::Tensor& w_mean,
                                  double ratio, bool duo_scaling);

// What a consumer's weight becomes during the scale search: Q(W·diag(s))·diag(1/s), Q being
// round-to-nearest on the `scheme` grid with `grid` options. weight [out, in], s [in].
torch::Tensor awq_scaled_quantized(const torch::Tensor& weight, const torch::Tensor& s,
                                   const QuantScheme& scheme, const GridOptions& grid);

// The tokens auto_clip_layer looks at: x [tokens, in], every (tokens / n)-th row from the first
// (all of them when there are no more than n).
torch::Tensor awq_clip_sample(const torch::Tensor& x, int64_t n);

struct AwqClipSearch {
  int n_grid = 20;          // candidates max·(1 − i/n_grid)
  double max_shrink = 0.5;  // for i < int(max_shrink·n_grid)
  int64_t row_batch = 256;  // rows searched at once (memory only; the result does not depend on it)
  // [in] >= 0, or undefined. When set, a group's error is Σ column_weight·(q − w)² instead of the
  // sampled outputs' (with the mean x² per channel: the diagonal of the output error, the
  // importance-weighted range search of grid.h's MseSearch).
  torch::Tensor column_weight;
};

// auto_clip_layer: for weight [out, in] and sampled inputs x [tokens, in], the shrink factor
// p [out, n_groups] of each row's column group whose clamp to [−p·max|w|, p·max|w|], quantized on
// the `scheme` grid (with `grid`, its MSE search ignored), gives the smallest mean over tokens of
// (x_g·(q_g − w_g))². A factor, not the clip value, so that it survives a later row scaling.
torch::Tensor awq_clip_factors(const torch::Tensor& weight, const torch::Tensor& x,
                               const QuantScheme& scheme, const GridOptions& grid,
                               const AwqClipSearch& search = {});

// apply_clip: weight [out, in] clamped per row and column group to ±factor·max|w| of the group.
torch::Tensor awq_apply_clip(const torch::Tensor& weight, const torch::Tensor& factors,
                             int64_t group_size);

}  // namespace presso

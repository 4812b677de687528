#include "lib/quant/awq.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lib/common/errors.h"
#include "lib/quant/quantize.h"

namespace presso {
namespace {

// weight [out, in] as [out, n_groups, group_size].
torch::Tensor by_groups(const torch::Tensor& weight, int64_t group_size) {
  const int64_t in = weight.size(1);
  const int64_t size = group_size > 0 ? group_size : in;
  if (in % size != 0) {
    fail_user("awq: group size {} does not divide the {} input columns", size, in);
  }
  return weight.reshape({weight.size(0), in / size, size});
}

}  // namespace

torch::Tensor awq_weight_magnitude(const torch::Tensor& weight, int64_t group_size) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = by_groups(weight.to(torch::kFloat32), group_size).abs();
  // An all-zero group would divide 0 by 0 in the original; it contributes 0 here.
  const torch::Tensor group_max = std::get<0>(w.max(-1, /*keepdim=*/true));
  const torch::Tensor normalised =
      torch::where(group_max > 0, w / group_max.clamp_min(std::numeric_limits<float>::min()),
                   torch::zeros_like(w));
  return normalised.reshape(weight.sizes()).mean(0);
}

torch::Tensor awq_candidate_scale(const torch::Tensor& x_mean, const torch::Tensor& w_mean,
                                  double ratio, bool duo_scaling) {
  torch::NoGradGuard no_grad;
  torch::Tensor s = x_mean.to(torch::kFloat32).pow(ratio);
  // AutoAWQ's form, which llm-compressor keeps as duo_scaling; llm-awq itself uses x alone.
  if (duo_scaling) s = s / (w_mean.to(torch::kFloat32).pow(1.0 - ratio) + 1e-4);
  s = s.clamp_min(1e-4);
  return s / (s.max() * s.min()).sqrt();
}

torch::Tensor awq_scaled_quantized(const torch::Tensor& weight, const torch::Tensor& s,
                                   const QuantScheme& scheme, const GridOptions& grid) {
  const torch::Tensor column = s.to(torch::kFloat32).unsqueeze(0);
  return dequantize(quantize_rtn(weight.to(torch::kFloat32) * column, scheme, grid)) / column;
}

torch::Tensor awq_clip_sample(const torch::Tensor& x, int64_t n) {
  const int64_t tokens = x.size(0);
  if (tokens <= n) return x;
  return x.slice(0, 0, tokens, tokens / n);
}

torch::Tensor awq_clip_factors(const torch::Tensor& weight, const torch::Tensor& x,
                               const QuantScheme& scheme, const GridOptions& grid,
                               const AwqClipSearch& search) {
  torch::NoGradGuard no_grad;
  if (weight.dim() != 2 || x.dim() != 2 || x.size(1) != weight.size(1)) {
    fail_internal("awq_clip_factors: weight [out, in] and inputs [tokens, in] expected");
  }
  GridOptions plain = grid;
  plain.mse.reset();  // the clip search is the range search here
  const torch::Tensor w_all = by_groups(weight.to(torch::kFloat32), scheme.group_size);
  const int64_t out = w_all.size(0), groups = w_all.size(1), size = w_all.size(2);
  // xg: [n_groups, group_size, tokens], so each group's partial outputs are one bmm.
  const torch::Tensor xg =
      x.to(weight.device(), torch::kFloat32).t().reshape({groups, size, x.size(0)});
  torch::Tensor factors = torch::ones({out, groups}, w_all.options());
  const torch::Tensor column_weight =
      search.column_weight.defined()
          ? search.column_weight.to(weight.device(), torch::kFloat32).reshape({1, groups, size})
          : torch::Tensor();
  const int steps = static_cast<int>(search.max_shrink * search.n_grid);
  for (int64_t r1 = 0; r1 < out; r1 += search.row_batch) {
    const int64_t r2 = std::min(out, r1 + search.row_batch);
    const torch::Tensor w = w_all.slice(0, r1, r2);                 // [rows, G, size]
    const torch::Tensor org_max = std::get<0>(w.abs().max(-1, true));  // [rows, G, 1]
    const torch::Tensor org_out =
        column_weight.defined() ? torch::Tensor() : torch::bmm(w.transpose(0, 1), xg);  // [G, rows, tokens]
    torch::Tensor best_error =
        torch::full({r2 - r1, groups}, std::numeric_limits<float>::infinity(), w.options());
    torch::Tensor best = torch::ones_like(best_error);
    for (int i = 0; i < steps; ++i) {
      const double p = 1.0 - static_cast<double>(i) / search.n_grid;
      const torch::Tensor max_val = org_max * p;
      const torch::Tensor clamped = torch::max(torch::min(w, max_val), -max_val);
      const torch::Tensor q = dequantize(
          quantize_rtn(clamped.reshape({r2 - r1, groups * size}), scheme, plain));
      const torch::Tensor q_groups = q.reshape({r2 - r1, groups, size});
      const torch::Tensor error =
          column_weight.defined()
              ? ((q_groups - w).pow(2) * column_weight).sum(-1)
              : (torch::bmm(q_groups.transpose(0, 1), xg) - org_out).pow(2).mean(-1).t();  // [rows, G]
      const torch::Tensor improved = error < best_error;
      best_error = torch::where(improved, error, best_error);
      best = torch::where(improved, torch::full_like(best, p), best);
    }
    factors.slice(0, r1, r2).copy_(best);
  }
  return factors;
}

torch::Tensor awq_apply_clip(const torch::Tensor& weight, const torch::Tensor& factors,
                             int64_t group_size) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = by_groups(weight, group_size);
  const torch::Tensor max_val =
      std::get<0>(w.abs().max(-1, true)) * factors.to(w.dtype()).unsqueeze(-1);
  return torch::max(torch::min(w, max_val), -max_val).reshape(weight.sizes());
}

}  // namespace presso

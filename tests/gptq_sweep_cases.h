// Shared by the GPTQ kernel tests (quant_gptq*.cpp): random masks, the visiting order, and the
// agreement of a sweep with the direct OBS reference.
#pragma once

#include <torch/types.h>

#include <cmath>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/quant/gptq.h"
#include "lib/quant/quant.h"
#include "lib/quant/reference.h"
#include "tests/catch_torch.h"
#include "tests/obs_layers.h"

namespace presso::test {

inline torch::Tensor random_mask(int64_t out, int64_t in, double sparsity, uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  return torch::rand({out, in}) >= sparsity;
}

// Visited position -> column.
inline torch::Tensor visit_order(const torch::Tensor& hessian, const GptqOptions& options) {
  const GptqHessian prepared = prepare_gptq_hessian(hessian, options, torch::kCPU);
  return prepared.perm ? *prepared.perm : torch::arange(hessian.size(0));
}

struct Agreement {
  int64_t rows_diverged = 0;  // rows whose codes differ somewhere
  int64_t codes_differ = 0;
  int64_t rows_not_at_tie = 0;  // rows whose first difference is not at a rounding tie
  float worst_first_tie = 0;    // largest tie distance at a first difference
  float worst_dequantized = 0;  // largest |fast − ref| over rows with equal codes
};

// fp32 summation order differs between the lazy-batch sweep and the direct loop, so a value at a
// rounding tie may round either way; after that the row legitimately goes its own way. A first
// difference anywhere but at a tie is a real disagreement.
inline Agreement compare(const GptqResult& fast, const GptqResult& ref, const torch::Tensor& ties,
                  const torch::Tensor& order) {
  Agreement a;
  const torch::Tensor f = fast.weight.q.index_select(1, order);
  const torch::Tensor r = ref.weight.q.index_select(1, order);
  const torch::Tensor t = ties.index_select(1, order);
  const torch::Tensor differ = f != r;
  a.codes_differ = differ.sum().item<int64_t>();
  const torch::Tensor row_differs = differ.any(1);
  a.rows_diverged = row_differs.sum().item<int64_t>();
  for (int64_t row = 0; row < f.size(0); ++row) {
    if (!row_differs[row].item<bool>()) {
      const float d = (fast.dequantized[row] - ref.dequantized[row]).abs().max().item<float>();
      a.worst_dequantized = std::max(a.worst_dequantized, d);
      continue;
    }
    const int64_t first = differ[row].to(torch::kInt32).argmax().item<int64_t>();
    const float tie = t[row][first].item<float>();
    a.worst_first_tie = std::max(a.worst_first_tie, tie);
    if (tie > 1e-3f) ++a.rows_not_at_tie;
  }
  return a;
}

inline std::string describe(const GptqOptions& o, bool masked, int dead) {
  return fmt::format(
      "bits {} group {} {} act_order {} static_groups {} block {} mask {} dead {} mse {} "
      "scale_dtype {} avoid_qmin_zero_point {}",
      o.scheme.bits, o.scheme.group_size, o.scheme.symmetric ? "sym" : "asym", o.act_order,
      o.static_groups, o.block_size, masked, dead, o.grid.mse.has_value(),
      c10::toString(o.grid.scale_dtype), o.grid.avoid_qmin_zero_point);
}

}  // namespace presso::test

// Shared by the pruning-mask tests (sparse_masks*.cpp): patterns and sparsities to sweep, random
// shapes with distinct or tied values, and the exact pruned-count checks.
#pragma once

#include <torch/types.h>

#include <random>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/sparse/reference.h"
#include "lib/sparse/sparse.h"
#include "tests/catch_torch.h"

namespace presso::test {

inline const std::vector<SparsityPattern> kPatterns = {{2, 4}, {4, 8}, {1, 4}, {3, 8}};
inline const std::vector<double> kSparsities = {0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.99};

struct Shape {
  int64_t out;
  int64_t in;  // a multiple of 8, so every pattern here divides it
};

inline Shape random_shape(std::mt19937& rng) {
  return {std::uniform_int_distribution<int64_t>(1, 40)(rng),
          8 * std::uniform_int_distribution<int64_t>(1, 12)(rng)};
}

// Every value different: a random permutation of 0..n-1, with random signs for weights.
inline torch::Tensor distinct_values(const Shape& s, bool signs) {
  torch::Tensor v = torch::randperm(s.out * s.in, torch::kFloat32).reshape({s.out, s.in});
  if (signs) v *= torch::randint(0, 2, {s.out, s.in}).mul(2).sub(1);
  return v * 0.01;
}

// Few values, so most comparisons are ties; with signs, |w| ties between w and -w too.
inline torch::Tensor tied_values(const Shape& s, bool signs) {
  return signs ? torch::randint(-2, 3, {s.out, s.in}).to(torch::kFloat32)
               : torch::randint(0, 3, {s.out, s.in}).to(torch::kFloat32);
}

// How many entries two masks disagree on, for failure messages.
inline int64_t differing(const torch::Tensor& a, const torch::Tensor& b) {
  return a.ne(b).sum().item<int64_t>();
}

inline std::string describe(const Shape& s, double sparsity, MaskScope scope,
                     const SparsityPattern& pattern, uint64_t seed) {
  return "[" + std::to_string(s.out) + ", " + std::to_string(s.in) + "] seed " +
         std::to_string(seed) + " " +
         (pattern.structured() ? sparsity_pattern_name(pattern)
                               : std::string(scope == MaskScope::kRow ? "row " : "layer ") +
                                     std::to_string(sparsity));
}

// Exactly the documented number pruned in every comparison group.
inline void check_counts(const torch::Tensor& mask, double sparsity, MaskScope scope,
                  const SparsityPattern& pattern) {
  const int64_t out = mask.size(0), in = mask.size(1);
  if (pattern.structured()) {
    CHECK(satisfies_pattern(mask, pattern));
    CHECK(satisfies_pattern_ref(mask, pattern));
  } else if (scope == MaskScope::kRow) {
    const torch::Tensor per_row = mask.logical_not().sum(1);
    CHECK(per_row.eq(pruned_count(in, sparsity)).all().item<bool>());
  } else {
    CHECK(mask.logical_not().sum().item<int64_t>() == pruned_count(out * in, sparsity));
  }
}

// Wanda's own row selection (prune_wanda): torch.sort(W_metric, dim=-1, stable=True), prune the
// first int(in · s) indices of each row.
inline torch::Tensor wanda_row_mask(const torch::Tensor& scores, double sparsity) {
  const torch::Tensor order = std::get<1>(scores.sort(c10::optional<bool>(true), /*dim=*/-1));
  const int64_t k = static_cast<int64_t>(scores.size(1) * sparsity);
  torch::Tensor pruned = torch::zeros_like(scores, torch::kBool);
  pruned.scatter_(1, order.narrow(1, 0, k), true);
  return pruned.logical_not();
}

}  // namespace presso::test

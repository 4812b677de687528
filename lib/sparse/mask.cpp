#include "lib/sparse/mask.h"

#include <limits>
#include <tuple>

#include "lib/common/errors.h"
#include "lib/sparse/checks.h"

namespace presso {
namespace {

// kthvalue has no fp16/bf16 kernel on the CPU of every LibTorch we build with; fp32 holds
// both exactly, so the order and the ties are unchanged.
torch::Tensor comparable(const torch::Tensor& scores) {
  const auto type = scores.scalar_type();
  if (type == torch::kHalf || type == torch::kBFloat16) return scores.to(torch::kFloat32);
  return scores;
}

}  // namespace

int64_t pruned_count(int64_t group_size, double sparsity) {
  return static_cast<int64_t>(static_cast<double>(group_size) * sparsity);
}

torch::Tensor lowest_k_per_row(const torch::Tensor& scores, int64_t k) {
  torch::NoGradGuard no_grad;
  const int64_t size = scores.size(1);
  if (k <= 0 || scores.numel() == 0) return torch::zeros_like(scores, torch::kBool);
  if (k >= size) return torch::ones_like(scores, torch::kBool);
  // Each row's k-th lowest value t: everything below t is pruned, and of the values equal to t
  // the first k − #below by column, so exactly k go, in stable-sort order.
  const torch::Tensor kth = std::get<0>(scores.kthvalue(k, /*dim=*/1, /*keepdim=*/true));  // [g, 1]
  const auto count_type =
      size <= std::numeric_limits<int32_t>::max() ? torch::kInt32 : torch::kInt64;
  torch::Tensor through = scores <= kth;
  // Usually no tie straddles t in any row: then the values up to t are exactly k.
  if (through.sum(/*dim=*/1, /*keepdim=*/false, count_type).eq(k).all().item<bool>()) {
    return through;
  }
  torch::Tensor below = scores < kth;
  const torch::Tensor tied = through.logical_xor_(below);
  const torch::Tensor ties_to_prune =
      k - below.sum(/*dim=*/1, /*keepdim=*/true, count_type);         // [g, 1], >= 1
  const torch::Tensor tie_rank = tied.cumsum(/*dim=*/1, count_type);  // 1-based among ties
  return below.logical_or_(tied.logical_and(tie_rank <= ties_to_prune));
}

namespace {

// mask_from_scores once `scores` has passed expect_finite_matrix.
torch::Tensor mask_from_finite_scores(const torch::Tensor& scores, double sparsity, MaskScope scope,
                                      const SparsityPattern& pattern,
                                      const std::string& tensor_name) {
  const int64_t out = scores.size(0);
  const int64_t in = scores.size(1);
  validate_pattern(pattern, in, tensor_name);
  if (!pattern.structured()) expect_sparsity(sparsity, tensor_name);
  const torch::Tensor s = comparable(scores);
  torch::Tensor pruned;
  if (pattern.structured()) {
    // [out · in/m, m]: one row per group of m consecutive columns.
    pruned = lowest_k_per_row(s.reshape({-1, pattern.m}), pattern.n);
  } else if (scope == MaskScope::kRow) {
    pruned = lowest_k_per_row(s, pruned_count(in, sparsity));
  } else {
    pruned = lowest_k_per_row(s.reshape({1, -1}), pruned_count(out * in, sparsity));
  }
  return pruned.logical_not_().reshape({out, in});
}

}  // namespace

torch::Tensor mask_from_scores(const torch::Tensor& scores, double sparsity, MaskScope scope,
                               const SparsityPattern& pattern, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  expect_finite_matrix(scores, "scores", tensor_name);
  return mask_from_finite_scores(scores, sparsity, scope, pattern, tensor_name);
}

torch::Tensor magnitude_mask(const torch::Tensor& weight, double sparsity, MaskScope scope,
                             const SparsityPattern& pattern, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  expect_finite_matrix(weight, "weight", tensor_name);
  return mask_from_finite_scores(weight.abs(), sparsity, scope, pattern, tensor_name);
}

double mask_sparsity(const torch::Tensor& mask) {
  if (mask.numel() == 0) return 0.0;
  const int64_t pruned = mask.logical_not().sum().item<int64_t>();
  return static_cast<double>(pruned) / static_cast<double>(mask.numel());
}

bool satisfies_pattern(const torch::Tensor& mask, const SparsityPattern& pattern) {
  torch::NoGradGuard no_grad;
  if (!mask.defined() || mask.dim() != 2 || mask.scalar_type() != torch::kBool) return false;
  if (!pattern.structured()) return true;
  if (pattern.m <= pattern.n || mask.size(1) % pattern.m != 0) return false;
  if (mask.numel() == 0) return true;
  const torch::Tensor pruned_per_group = mask.logical_not().reshape({-1, pattern.m}).sum(1);
  return pruned_per_group.eq(pattern.n).all().item<bool>();
}

void apply_mask_(const torch::Tensor& weight, const torch::Tensor& mask,
                 const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  if (!mask.defined() || mask.scalar_type() != torch::kBool || !weight.defined() ||
      mask.sizes() != weight.sizes()) {
    fail_user("{}: the mask must be bool with the weight's shape {}, got {} {}",
              sparse_tensor_label(tensor_name, "weight"),
              weight.defined() ? sparse_shape_string(weight) : "(undefined)",
              mask.defined() ? c10::toString(mask.scalar_type()) : "undefined",
              mask.defined() ? sparse_shape_string(mask) : "");
  }
  weight.masked_fill_(mask.logical_not().to(weight.device()), 0);
}

}  // namespace presso

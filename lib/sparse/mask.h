// Pruning masks from importance scores, with exact pruned counts per comparison group: the
// builder that magnitude, Wanda and SparseGPT share, and magnitude's own scores.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

#include "lib/sparse/pattern.h"

namespace presso {

// The comparison group of an unstructured mask: the whole tensor (one threshold per linear, as
// wanda's prune_magnitude and SparseGPT's per-block choice) or each output row (Wanda's group).
enum class MaskScope { kLayer, kRow };

// Weights pruned from a comparison group of `group_size` at `sparsity`: floor(group_size ·
// sparsity) computed in double, i.e. Python's int(n * s) as the originals write it (Wanda:
// int(W.shape[1] * sparsity_ratio); wanda's magnitude: int(W.numel() * sparsity_ratio)). Being
// the same double product, it agrees with them even where it falls just below a whole number:
// pruned_count(100, 0.29) = 28, as int(100 * 0.29) is.
int64_t pruned_count(int64_t group_size, double sparsity);

// Mask [out, in] bool (true = kept) on the device of scores [out, in] (higher = more important;
// any floating dtype, all finite). Comparison groups and what each loses:
//   pattern N:M   every M consecutive columns of each row lose N (sparsity and scope ignored);
//   kLayer        the whole tensor loses pruned_count(out · in, sparsity);
//   kRow          each output row loses pruned_count(in, sparsity).
// Exactly that many, the lowest scores, with ties broken by position: of equal scores the one
// earlier in the group (earlier column; in kLayer earlier in row-major order) is pruned first,
// the order of a stable ascending sort, which is what Wanda's row groups use
// (torch.sort(W_metric, dim=-1, stable=True)). The originals' other forms are not exact:
// wanda's prune_magnitude prunes |W| <= sorted[int(numel · s)], one weight more than int(numel · s)
// when values are distinct and every tie of the threshold besides; the N:M paths use topk, whose
// tie order is unspecified. Masks agree with theirs wherever no tie straddles the cut.
// UserError (naming the tensor) for bad scores, a sparsity outside [0, 1) when unstructured, an
// invalid pattern or one whose M does not divide `in`.
torch::Tensor mask_from_scores(const torch::Tensor& scores, double sparsity,
                               MaskScope scope = MaskScope::kLayer,
                               const SparsityPattern& pattern = {},
                               const std::string& tensor_name = "");

// Magnitude pruning: mask_from_scores on |weight| (compared in fp32 for fp32/fp16/bf16
// weights, which is exact, and in fp64 for fp64 weights).
torch::Tensor magnitude_mask(const torch::Tensor& weight, double sparsity,
                             MaskScope scope = MaskScope::kLayer,
                             const SparsityPattern& pattern = {},
                             const std::string& tensor_name = "");

// Of every row of scores [groups, size], the k lowest with ties broken by column (earlier
// first): bool [groups, size], true = among them. The kernel under every mask here; one
// kthvalue per row plus a tie count, so it never sorts or allocates index tensors.
torch::Tensor lowest_k_per_row(const torch::Tensor& scores, int64_t k);

// Fraction of the mask's entries that are false (pruned); 0 for an empty mask.
double mask_sparsity(const torch::Tensor& mask);

// Whether mask [out, in] bool has exactly pattern.n false entries in every group of pattern.m
// consecutive columns of each row. An unstructured pattern accepts every 2-d bool mask; a mask
// that is not 2-d bool, or whose width m does not divide, does not satisfy an N:M pattern.
bool satisfies_pattern(const torch::Tensor& mask, const SparsityPattern& pattern);

// Zeroes weight [out, in] where mask is false, in place. masked_fill_ rather than a product, so
// a pruned negative weight becomes +0, not -0 (a bitmask or a bit-exact comparison sees the
// difference).
void apply_mask_(const torch::Tensor& weight, const torch::Tensor& mask,
                 const std::string& tensor_name = "");

}  // namespace presso

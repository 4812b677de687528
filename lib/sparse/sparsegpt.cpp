#include "lib/sparse/sparsegpt.h"

#include "lib/common/errors.h"
#include "lib/sparse/mask.h"

namespace presso {

SweepPruning sparsegpt_pruning(double sparsity, const SparsityPattern& pattern) {
  validate_pattern(pattern);
  SweepPruning pruning;
  if (pattern.structured()) {
    pruning.n = pattern.n;
    pruning.m = pattern.m;
    return pruning;
  }
  if (!(sparsity >= 0 && sparsity < 1)) {
    fail_user("sparsegpt: sparsity {} must be in [0, 1)", sparsity);
  }
  pruning.block_mask = [sparsity](const torch::Tensor& block_weight,
                                  const torch::Tensor& inverse_diagonal) {
    const torch::Tensor saliency = block_weight.square() / inverse_diagonal.square().unsqueeze(0);
    return lowest_k_per_row(saliency.reshape({1, -1}), pruned_count(saliency.numel(), sparsity))
        .view_as(saliency)
        .logical_not();
  };
  return pruning;
}

}  // namespace presso

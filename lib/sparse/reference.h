// Slow, obvious loop versions of the mask kernels, written from the definitions in mask.h and
// global_magnitude.h: every comparison group is gathered into a std::vector and sorted by
// (score, position). Tests compare the fast tensor versions against these, mask for mask,
// ties included; nothing else should call them. CPU only, any input device.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "lib/sparse/mask.h"
#include "lib/sparse/pattern.h"

namespace presso {

torch::Tensor mask_from_scores_ref(const torch::Tensor& scores, double sparsity,
                                   MaskScope scope = MaskScope::kLayer,
                                   const SparsityPattern& pattern = {});

torch::Tensor magnitude_mask_ref(const torch::Tensor& weight, double sparsity,
                                 MaskScope scope = MaskScope::kLayer,
                                 const SparsityPattern& pattern = {});

// One list of (fp32 |w|, layer, position) sorted, walked from the start: a weight is pruned
// unless its layer has reached its cap, until K are.
std::vector<torch::Tensor> global_magnitude_masks_ref(const std::vector<torch::Tensor>& weights,
                                                      double sparsity, double min_keep);

bool satisfies_pattern_ref(const torch::Tensor& mask, const SparsityPattern& pattern);

}  // namespace presso

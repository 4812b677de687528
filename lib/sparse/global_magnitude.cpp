#include "lib/sparse/global_magnitude.h"

#include <algorithm>
#include <cstdint>
#include <functional>

#include "lib/common/errors.h"
#include "lib/sparse/checks.h"
#include "lib/sparse/mask.h"

namespace presso {
namespace {

constexpr int kLowBits = 15;
constexpr int64_t kHighBins = int64_t{1} << (31 - kLowBits);  // the sign bit of |W| is 0
constexpr int64_t kLowBins = int64_t{1} << kLowBits;

// |W| in fp32, flat [numel].
torch::Tensor magnitude_scores(const torch::Tensor& weight) {
  return weight.abs().to(torch::kFloat32).contiguous().reshape({-1});
}

// The fp32 bit patterns of |W| as int32 [numel]; for non-negative finite floats the integer
// order is the value order (and +0 is the only zero: abs clears the sign of -0).
torch::Tensor magnitude_bits(const torch::Tensor& weight) {
  return magnitude_scores(weight).view(torch::kInt32);
}

// Counts of each value 0..bins-1 of `values` (int32 [n]), on the CPU as int64 [bins].
torch::Tensor value_counts(const torch::Tensor& values, int64_t bins) {
  return values.bincount({}, bins).to(torch::kCPU, torch::kInt64);
}

// Of a histogram's cumulative counts per layer capped at cap_i and summed over the layers, the
// first bin where the sum reaches `target`: the bin that holds the cut.
int64_t first_bin_reaching(const torch::Tensor& reach, int64_t target) {
  return reach.lt(target).sum().item<int64_t>();
}

// Where the global order is cut, and what each layer loses.
struct GlobalCut {
  int32_t bits = 0;              // the fp32 bit pattern of |W| at the cut, t
  std::vector<int64_t> pruned;   // p_i
  std::vector<int64_t> below;    // #(|W_i| < t), uncapped
  std::vector<int64_t> through;  // #(|W_i| <= t), uncapped
};

// p_i of global_magnitude_masks' comment, for 1 <= K <= Σ cap_i. `load(i)` gives layer i's
// weight; each is loaded twice, one at a time.
GlobalCut find_global_cut(const std::function<torch::Tensor(size_t)>& load, size_t layers,
                          const std::vector<int64_t>& caps, int64_t target) {
  // Level 1: the bin of the high 16 bits that holds the cut.
  torch::Tensor reach = torch::zeros({kHighBins}, torch::kInt64);
  for (size_t i = 0; i < layers; ++i) {
    const torch::Tensor weight = load(i);
    if (weight.numel() == 0) continue;
    const torch::Tensor high = magnitude_bits(weight).bitwise_right_shift(kLowBits);
    reach += value_counts(high, kHighBins).cumsum(0).clamp_max(caps[i]);
  }
  const int64_t high_bin = first_bin_reaching(reach, target);
  // Level 2: within that bin, the low 15 bits; every weight of a lower bin is before the cut.
  // cumulative[i][b]: layer i's weights up to the high bin's b-th value, uncapped, of which
  // below_bin[i] lie in lower bins.
  torch::Tensor reach_low = torch::zeros({kLowBins}, torch::kInt64);
  std::vector<torch::Tensor> cumulative(layers);
  std::vector<int64_t> below_bin(layers, 0);
  for (size_t i = 0; i < layers; ++i) {
    const torch::Tensor weight = load(i);
    if (weight.numel() == 0) continue;
    const torch::Tensor bits = magnitude_bits(weight);
    const torch::Tensor high = bits.bitwise_right_shift(kLowBits);
    below_bin[i] = high.lt(high_bin).sum().item<int64_t>();
    const torch::Tensor low = bits.masked_select(high.eq(high_bin)).bitwise_and(kLowBins - 1);
    cumulative[i] = value_counts(low, kLowBins).cumsum(0).add_(below_bin[i]);
    reach_low += cumulative[i].clamp_max(caps[i]);
  }
  const int64_t low_bin = first_bin_reaching(reach_low, target);
  // The cut's value t, exactly. Layers lose their weights below t (up to their cap), and the
  // ties at t go to the layers in index order until the total is met.
  GlobalCut cut;
  cut.bits = static_cast<int32_t>((high_bin << kLowBits) | low_bin);
  cut.pruned.assign(layers, 0);
  cut.below.assign(layers, 0);
  cut.through.assign(layers, 0);
  int64_t remaining = target;
  for (size_t i = 0; i < layers; ++i) {
    if (!cumulative[i].defined()) continue;
    cut.through[i] = cumulative[i][low_bin].item<int64_t>();
    cut.below[i] = low_bin > 0 ? cumulative[i][low_bin - 1].item<int64_t>() : below_bin[i];
    remaining -= std::min(caps[i], cut.below[i]);
  }
  for (size_t i = 0; i < layers; ++i) {
    const int64_t below = std::min(caps[i], cut.below[i]);
    const int64_t ties = std::min(std::min(caps[i], cut.through[i]) - below, remaining);
    cut.pruned[i] = below + ties;
    remaining -= ties;
  }
  if (remaining != 0) {
    fail_internal("global magnitude: the selected cut leaves {} of {} weights unassigned",
                  remaining, target);
  }
  return cut;
}

}  // namespace

double default_global_min_keep(double sparsity) { return 0.5 * (1.0 - sparsity); }

namespace {

// Validates the layers (loading each once) and finds the cut; target 0 needs none.
GlobalCut global_cut(const std::function<torch::Tensor(size_t)>& load, size_t layers,
                     double sparsity, double min_keep,
                     const std::vector<std::string>& tensor_names) {
  torch::NoGradGuard no_grad;
  if (!tensor_names.empty() && tensor_names.size() != layers) {
    fail_internal("global magnitude: {} tensor names for {} weights", tensor_names.size(), layers);
  }
  const auto name = [&](size_t i) {
    return tensor_names.empty() ? "layer " + std::to_string(i) : tensor_names[i];
  };
  if (!(sparsity >= 0.0 && sparsity < 1.0)) {
    fail_user("global magnitude: sparsity {} is out of range (valid: 0 <= sparsity < 1)", sparsity);
  }
  if (!(min_keep >= 0.0 && min_keep <= 1.0)) {
    fail_user(
        "global magnitude: min_keep {} is out of range (valid: 0 <= min_keep <= 1, the least "
        "fraction of each layer kept)",
        min_keep);
  }
  int64_t total = 0;
  int64_t prunable = 0;
  std::vector<int64_t> caps(layers);
  for (size_t i = 0; i < layers; ++i) {
    const torch::Tensor weight = load(i);
    expect_finite_matrix(weight, "weight", name(i));
    total += weight.numel();
    caps[i] = pruned_count(weight.numel(), 1.0 - min_keep);
    prunable += caps[i];
  }
  const int64_t target = pruned_count(total, sparsity);
  if (prunable < target) {
    fail_user(
        "global magnitude: sparsity {} of {} weights in {} layers prunes {}, but min_keep {} "
        "lets at most {} be pruned; lower min_keep (to about 1 − sparsity = {} or less) or the "
        "sparsity",
        sparsity, total, layers, target, min_keep, prunable, 1.0 - sparsity);
  }
  if (target == 0) {
    GlobalCut none;
    none.pruned.assign(layers, 0);
    return none;
  }
  return find_global_cut(load, layers, caps, target);
}

}  // namespace

std::vector<int64_t> global_magnitude_counts(size_t layers,
                                             const std::function<torch::Tensor(size_t)>& load,
                                             double sparsity, double min_keep,
                                             const std::vector<std::string>& tensor_names) {
  return global_cut(load, layers, sparsity, min_keep, tensor_names).pruned;
}

std::vector<torch::Tensor> global_magnitude_masks(const std::vector<torch::Tensor>& weights,
                                                  double sparsity, double min_keep,
                                                  const std::vector<std::string>& tensor_names) {
  const GlobalCut cut = global_cut([&](size_t i) { return weights[i]; }, weights.size(), sparsity,
                                   min_keep, tensor_names);
  std::vector<torch::Tensor> masks;
  masks.reserve(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    if (cut.pruned[i] == 0) {
      masks.push_back(torch::ones_like(weights[i], torch::kBool));
      continue;
    }
    const torch::Tensor bits = magnitude_bits(weights[i]);
    torch::Tensor kept;
    if (cut.pruned[i] == cut.below[i]) {
      kept = bits.ge(cut.bits);
    } else if (cut.pruned[i] == cut.through[i]) {
      kept = bits.gt(cut.bits);
    } else {
      // A capped layer, or one that takes only some of the ties at the cut: its own k lowest,
      // on the same fp32 scores with the same tie order as the global one.
      kept = lowest_k_per_row(magnitude_scores(weights[i]).reshape({1, -1}), cut.pruned[i])
                 .logical_not_();
    }
    masks.push_back(kept.reshape(weights[i].sizes()));
  }
  return masks;
}

}  // namespace presso

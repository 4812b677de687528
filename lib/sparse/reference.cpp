#include "lib/sparse/reference.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <utility>

#include "lib/common/errors.h"

namespace presso {
namespace {

// The flat row-major positions of each comparison group of an [out, in] tensor.
std::vector<std::vector<int64_t>> comparison_groups(int64_t out, int64_t in, MaskScope scope,
                                                    const SparsityPattern& pattern) {
  std::vector<std::vector<int64_t>> groups;
  if (pattern.structured()) {
    for (int64_t r = 0; r < out; ++r) {
      for (int64_t c0 = 0; c0 < in; c0 += pattern.m) {
        std::vector<int64_t> group;
        for (int64_t c = c0; c < c0 + pattern.m; ++c) group.push_back(r * in + c);
        groups.push_back(group);
      }
    }
  } else if (scope == MaskScope::kRow) {
    for (int64_t r = 0; r < out; ++r) {
      std::vector<int64_t> group;
      for (int64_t c = 0; c < in; ++c) group.push_back(r * in + c);
      groups.push_back(group);
    }
  } else {
    std::vector<int64_t> group;
    for (int64_t p = 0; p < out * in; ++p) group.push_back(p);
    groups.push_back(group);
  }
  return groups;
}

std::vector<double> values_of(const torch::Tensor& t) {
  const torch::Tensor flat = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  const double* data = flat.data_ptr<double>();
  return std::vector<double>(data, data + flat.numel());
}

}  // namespace

torch::Tensor mask_from_scores_ref(const torch::Tensor& scores, double sparsity, MaskScope scope,
                                   const SparsityPattern& pattern) {
  if (scores.dim() != 2) fail_user("mask_from_scores_ref: scores must be 2-d");
  if (pattern.structured() && scores.size(1) % pattern.m != 0) {
    fail_user("mask_from_scores_ref: pattern {}:{} does not divide the width {}", pattern.n,
              pattern.m, scores.size(1));
  }
  if (!pattern.structured() && !(sparsity >= 0.0 && sparsity < 1.0)) {
    fail_user("mask_from_scores_ref: sparsity {} outside [0, 1)", sparsity);
  }
  const int64_t out = scores.size(0);
  const int64_t in = scores.size(1);
  const std::vector<double> values = values_of(scores);
  std::vector<uint8_t> keep(values.size(), 1);
  for (const auto& group : comparison_groups(out, in, scope, pattern)) {
    const int64_t size = static_cast<int64_t>(group.size());
    const int64_t k =
        pattern.structured()
            ? pattern.n
            : static_cast<int64_t>(static_cast<double>(size) * sparsity);  // int(n * s)
    std::vector<std::pair<double, int64_t>> order;
    for (int64_t p : group) order.emplace_back(values[p], p);
    std::sort(order.begin(), order.end());  // by score, then by position
    for (int64_t j = 0; j < k && j < size; ++j) keep[order[j].second] = 0;
  }
  torch::Tensor mask = torch::empty({out, in}, torch::kBool);
  bool* data = mask.data_ptr<bool>();
  for (size_t p = 0; p < keep.size(); ++p) data[p] = keep[p] != 0;
  return mask.to(scores.device());
}

torch::Tensor magnitude_mask_ref(const torch::Tensor& weight, double sparsity, MaskScope scope,
                                 const SparsityPattern& pattern) {
  std::vector<double> values = values_of(weight);
  for (double& v : values) v = std::fabs(v);
  const torch::Tensor magnitudes =
      torch::from_blob(values.data(), {weight.size(0), weight.size(1)}, torch::kFloat64).clone();
  return mask_from_scores_ref(magnitudes, sparsity, scope, pattern).to(weight.device());
}

std::vector<torch::Tensor> global_magnitude_masks_ref(const std::vector<torch::Tensor>& weights,
                                                      double sparsity, double min_keep) {
  std::vector<std::tuple<float, size_t, int64_t>> order;  // (|w| in fp32, layer, position)
  std::vector<int64_t> caps;
  std::vector<std::vector<uint8_t>> keep;
  int64_t total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const std::vector<double> values = values_of(weights[i]);
    for (size_t p = 0; p < values.size(); ++p) {
      order.emplace_back(static_cast<float>(std::fabs(values[p])), i, static_cast<int64_t>(p));
    }
    const int64_t n = static_cast<int64_t>(values.size());
    caps.push_back(static_cast<int64_t>(static_cast<double>(n) * (1.0 - min_keep)));
    keep.emplace_back(values.size(), 1);
    total += n;
  }
  const int64_t target = static_cast<int64_t>(static_cast<double>(total) * sparsity);
  std::sort(order.begin(), order.end());
  std::vector<int64_t> pruned(weights.size(), 0);
  int64_t done = 0;
  for (const auto& [value, layer, position] : order) {
    if (done == target) break;
    (void)value;
    if (pruned[layer] == caps[layer]) continue;
    keep[layer][position] = 0;
    ++pruned[layer];
    ++done;
  }
  if (done != target) fail_user("global_magnitude_masks_ref: the floor leaves the target unmet");
  std::vector<torch::Tensor> masks;
  for (size_t i = 0; i < weights.size(); ++i) {
    torch::Tensor mask = torch::empty(weights[i].sizes(), torch::kBool);
    bool* data = mask.data_ptr<bool>();
    for (size_t p = 0; p < keep[i].size(); ++p) data[p] = keep[i][p] != 0;
    masks.push_back(mask.to(weights[i].device()));
  }
  return masks;
}

bool satisfies_pattern_ref(const torch::Tensor& mask, const SparsityPattern& pattern) {
  if (mask.dim() != 2 || mask.scalar_type() != torch::kBool) return false;
  if (!pattern.structured()) return true;
  const int64_t in = mask.size(1);
  if (in % pattern.m != 0) return false;
  const torch::Tensor m = mask.to(torch::kCPU).contiguous();
  const bool* data = m.data_ptr<bool>();
  for (int64_t r = 0; r < mask.size(0); ++r) {
    for (int64_t c0 = 0; c0 < in; c0 += pattern.m) {
      int zeros = 0;
      for (int64_t c = c0; c < c0 + pattern.m; ++c) zeros += data[r * in + c] ? 0 : 1;
      if (zeros != pattern.n) return false;
    }
  }
  return true;
}

}  // namespace presso

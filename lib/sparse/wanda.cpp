#include "lib/sparse/wanda.h"

#include <algorithm>
#include <numeric>

#include "lib/common/errors.h"
#include "lib/sparse/checks.h"

namespace presso {

torch::Tensor wanda_scores(const torch::Tensor& weight, const torch::Tensor& input_norm,
                           const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  expect_finite_matrix(weight, "weight", tensor_name);
  const std::string label = sparse_tensor_label(tensor_name, "the weight");
  if (input_norm.dim() != 1 || input_norm.size(0) != weight.size(1)) {
    fail_user("{} {}: the input norm has shape {}, expected [{}] (one per input column)", label,
              sparse_shape_string(weight), sparse_shape_string(input_norm), weight.size(1));
  }
  const torch::Tensor norm = input_norm.to(weight.device(), torch::kFloat32);
  if (!torch::isfinite(norm).all().item<bool>() || (norm < 0).any().item<bool>()) {
    fail_user(
        "{}: the input norm has negative or non-finite values (activations of the "
        "calibration data overflowed?)",
        label);
  }
  // W: [out, in], norm: [in] broadcast over the rows.
  return weight.to(torch::kFloat32).abs() * norm.unsqueeze(0);
}

double owl_outlier_ratio(const std::vector<torch::Tensor>& scores, double threshold_m) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  int64_t count = 0;
  for (const auto& s : scores) {
    sum += s.sum(torch::kFloat64).item<double>();
    count += s.numel();
  }
  if (count == 0) return 0;
  const double threshold = threshold_m * sum / static_cast<double>(count);
  int64_t outliers = 0;
  for (const auto& s : scores) outliers += (s > threshold).sum().item<int64_t>();
  return 100.0 * static_cast<double>(outliers) / static_cast<double>(count);
}

std::vector<double> owl_layer_sparsities(const std::vector<double>& outlier_ratios, double sparsity,
                                         double lambda) {
  std::vector<double> sparsities(outlier_ratios.size(), sparsity);
  if (outlier_ratios.empty()) return sparsities;
  const auto [low, high] = std::minmax_element(outlier_ratios.begin(), outlier_ratios.end());
  const double range = *high - *low;
  if (range <= 0) return sparsities;
  std::vector<double> scaled;
  for (double d : outlier_ratios) scaled.push_back((d - *low) * (1.0 / range * lambda * 2));
  const double mean =
      std::accumulate(scaled.begin(), scaled.end(), 0.0) / static_cast<double>(scaled.size());
  // Upstream's 1 − (D − mean + (1 − sparsity)).
  for (size_t i = 0; i < scaled.size(); ++i)
    sparsities[i] = 1 - (scaled[i] - mean + (1 - sparsity));
  return sparsities;
}

}  // namespace presso

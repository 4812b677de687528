#include "lib/sparse/checks.h"

#include <fmt/format.h>

#include <cmath>

#include "lib/common/errors.h"
#include "lib/quant/tensor_checks.h"

namespace presso {
std::string sparse_shape_string(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

std::string sparse_tensor_label(const std::string& tensor_name, const std::string& fallback) {
  return tensor_name.empty() ? fallback : fmt::format("tensor '{}'", tensor_name);
}

void expect_finite_matrix(const torch::Tensor& t, const std::string& what,
                          const std::string& tensor_name) {
  const std::string label = sparse_tensor_label(tensor_name, what);
  if (!t.defined() || t.dim() != 2 || !torch::isFloatingType(t.scalar_type())) {
    fail_user("{}: {} must be a 2-d floating-point tensor [out, in], got {}", label, what,
              t.defined()
                  ? fmt::format("{} {}", c10::toString(t.scalar_type()), sparse_shape_string(t))
                  : std::string("an undefined tensor"));
  }
  if (t.numel() == 0) return;
  if (!all_finite(t)) {
    const int64_t bad = torch::isfinite(t).logical_not().sum().item<int64_t>();
    fail_user("{}: {} {} has {} NaN or infinite values; a mask needs finite values", label, what,
              sparse_shape_string(t), bad);
  }
}

void expect_sparsity(double sparsity, const std::string& tensor_name) {
  if (!(sparsity >= 0.0 && sparsity < 1.0)) {
    fail_user("{}: sparsity {} is out of range (valid: 0 <= sparsity < 1, the fraction pruned)",
              sparse_tensor_label(tensor_name, "mask"), sparsity);
  }
}

}  // namespace presso

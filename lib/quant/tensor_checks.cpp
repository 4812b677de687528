#include "lib/quant/tensor_checks.h"

#include <cmath>

#include "lib/common/errors.h"

namespace presso {

std::string shape_string(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

void expect_tensor(const torch::Tensor& t, const std::vector<int64_t>& sizes,
                   torch::ScalarType dtype, const std::string& what,
                   const std::string& tensor_name) {
  if (t.sizes() == torch::IntArrayRef(sizes) && t.scalar_type() == dtype) return;
  std::string want = "[";
  for (size_t d = 0; d < sizes.size(); ++d) want += (d ? ", " : "") + std::to_string(sizes[d]);
  fail_user("tensor '{}': {} must be {} {}], got {} {}", tensor_name, what, c10::toString(dtype),
            want, c10::toString(t.scalar_type()), shape_string(t));
}

void expect_g_idx(const torch::Tensor& g_idx, int64_t in, int64_t groups,
                  const std::string& tensor_name) {
  if (g_idx.dim() != 1 || g_idx.size(0) != in || !c10::isIntegralType(g_idx.scalar_type(), false)) {
    fail_user("tensor '{}': g_idx must be an integer tensor [{}], got {} {}", tensor_name, in,
              c10::toString(g_idx.scalar_type()), shape_string(g_idx));
  }
  if (in > 0 && (g_idx.min().item<int64_t>() < 0 || g_idx.max().item<int64_t>() >= groups)) {
    fail_user("tensor '{}': g_idx values must lie in [0, {}), got [{}, {}]", tensor_name, groups,
              g_idx.min().item<int64_t>(), g_idx.max().item<int64_t>());
  }
}

bool all_finite(const torch::Tensor& t) {
  // A finite sum proves it (NaN and ±inf carry through a sum); an infinite one may only be
  // finite values overflowing, which the elementwise test settles.
  return std::isfinite(t.sum().item<double>()) || torch::isfinite(t).all().item<bool>();
}

torch::Tensor exact_scale_cast(const torch::Tensor& scale, torch::ScalarType dtype,
                               const std::string& tensor_name) {
  const torch::Tensor cast = scale.to(dtype);
  if (!torch::equal(cast.to(scale.scalar_type()), scale)) {
    fail_internal(
        "tensor '{}': scales are not exactly representable in {}; compute the grid with "
        "GridOptions::scale_dtype = {} so the stored scales are the ones the codes were chosen for",
        tensor_name, c10::toString(dtype), c10::toString(dtype));
  }
  return cast.contiguous();
}

std::optional<torch::Tensor> non_default_g_idx(const torch::Tensor& g_idx, int64_t group_size) {
  const torch::Tensor consecutive =
      torch::arange(g_idx.size(0), torch::kInt32).div_(group_size, "floor");
  if (torch::equal(g_idx.to(torch::kInt32), consecutive)) return std::nullopt;
  return g_idx.to(torch::kInt32);
}

}  // namespace presso

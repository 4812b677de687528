#include "lib/quant/grid.h"

#include <limits>

#include "lib/common/errors.h"

namespace presso {
namespace {

void validate_mse(const MseSearch& mse) {
  if (!(mse.grid > 0) || !(mse.maxshrink >= 0 && mse.maxshrink < 1) || !(mse.norm > 0)) {
    fail_user("mse search: grid {} must be > 0, maxshrink {} in [0, 1), norm {} > 0", mse.grid,
              mse.maxshrink, mse.norm);
  }
}

void validate_scale_dtype(torch::ScalarType dtype) {
  if (dtype != torch::kFloat32 && dtype != torch::kFloat16 && dtype != torch::kBFloat16) {
    fail_user("scale dtype {} is not supported (valid: float32, float16, bfloat16)",
              c10::toString(dtype));
  }
}

// Rounds scales to the storage dtype, then replaces zeros (all-zero groups, or scales below the
// dtype's smallest subnormal) as compressed-tensors does.
torch::Tensor storable_scale(const torch::Tensor& scale, torch::ScalarType dtype) {
  torch::Tensor rounded = scale.to(dtype).to(torch::kFloat32);
  if (torch::isinf(rounded).any().item<bool>()) {
    fail_user("a quantization scale overflows {} (largest scale {}); store scales in a wider type",
              c10::toString(dtype), scale.max().item<float>());
  }
  return torch::where(rounded == 0, torch::full_like(rounded, zero_scale_substitute(dtype)),
                      rounded);
}

// zp = round_half_even(clamp(q_min − min/scale, q_min, q_max)), compressed-tensors'
// calculate_qparams (0.18.0, quantization/utils/helpers.py) with its zp_dtype rounding.
torch::Tensor asymmetric_zero_point(const torch::Tensor& min, const torch::Tensor& scale,
                                    int bits) {
  const double qmin = static_cast<double>(quant_min(bits));
  const double qmax = static_cast<double>(quant_max(bits));
  return torch::round(torch::clamp(qmin - min / scale, qmin, qmax));
}

}  // namespace

float zero_scale_substitute(torch::ScalarType scale_dtype) {
  switch (scale_dtype) {
    case torch::kFloat16:
      return 1.0f / 1024;  // finfo(float16).eps
    case torch::kBFloat16:
      return 1.0f / 128;  // finfo(bfloat16).eps
    default:
      return std::numeric_limits<float>::epsilon();
  }
}

torch::Tensor quantize_values(const torch::Tensor& x, const torch::Tensor& scale,
                              const torch::Tensor& zero_point, int bits) {
  // Division, not multiplication by a reciprocal: compressed-tensors divides, and the two differ
  // in the last bit often enough to flip a code at a rounding tie.
  return torch::round(torch::clamp(x / scale + zero_point.to(torch::kFloat32),
                                   static_cast<double>(quant_min(bits)),
                                   static_cast<double>(quant_max(bits))));
}

torch::Tensor dequantize_values(const torch::Tensor& q, const torch::Tensor& scale,
                                const torch::Tensor& zero_point) {
  return (q.to(torch::kFloat32) - zero_point.to(torch::kFloat32)) * scale;
}

QuantGrid grid_from_range(const torch::Tensor& min, const torch::Tensor& max,
                          const QuantScheme& scheme, const GridOptions& options) {
  torch::NoGradGuard no_grad;
  validate_scheme(scheme);
  validate_scale_dtype(options.scale_dtype);
  const torch::Tensor lo = torch::clamp_max(min.to(torch::kFloat32), 0.0);
  const torch::Tensor hi = torch::clamp_min(max.to(torch::kFloat32), 0.0);
  const double levels = static_cast<double>((int64_t{1} << scheme.bits) - 1);  // 2^b − 1

  if (scheme.symmetric) {
    const torch::Tensor absmax = torch::maximum(lo.abs(), hi);
    return {storable_scale(absmax / (levels / 2), options.scale_dtype),
            torch::zeros(absmax.sizes(), absmax.options().dtype(torch::kInt32))};
  }

  torch::Tensor scale = storable_scale((hi - lo) / levels, options.scale_dtype);
  torch::Tensor zero_point = asymmetric_zero_point(lo, scale, scheme.bits);
  if (options.avoid_qmin_zero_point) {
    const double qmin = static_cast<double>(quant_min(scheme.bits));
    const torch::Tensor at_qmin = zero_point == qmin;
    // With zero point q_min + 1 the codes above it span 2^b − 2 steps, which must reach max.
    const torch::Tensor widened = storable_scale(hi / (levels - 1), options.scale_dtype);
    scale = torch::where(at_qmin, widened, scale);
    zero_point = torch::where(at_qmin, torch::full_like(zero_point, qmin + 1), zero_point);
  }
  return {scale, zero_point.to(torch::kInt32)};
}

QuantGrid compute_grid(const torch::Tensor& weight, const QuantScheme& scheme,
                       const GridOptions& options, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  if (weight.dim() != 2) {
    fail_user("tensor '{}': expected a 2-d weight [out, in], got {} dimensions", tensor_name,
              weight.dim());
  }
  const int64_t out = weight.size(0);
  const int64_t in = weight.size(1);
  validate_scheme(scheme, in, tensor_name);
  if (!torch::isfinite(weight).all().item<bool>()) {
    fail_user("tensor '{}': the weight holds NaN or infinite values, which have no grid",
              tensor_name);
  }
  const int64_t groups = group_count(scheme, in);
  // x: [out, n_groups, group_size]
  const torch::Tensor x = weight.to(torch::kFloat32).reshape({out, groups, in / groups});
  const torch::Tensor min = std::get<0>(x.min(-1));
  const torch::Tensor max = std::get<0>(x.max(-1));
  if (!options.mse) return grid_from_range(min, max, scheme, options);

  const MseSearch& mse = *options.mse;
  validate_mse(mse);
  torch::Tensor best_error = torch::full_like(min, std::numeric_limits<float>::infinity());
  torch::Tensor best_min = min;
  torch::Tensor best_max = max;
  const int steps = static_cast<int>(mse.maxshrink * mse.grid);
  int steps_without_gain = 0;
  for (int i = 0; i < steps; ++i) {
    const double p = 1.0 - i / mse.grid;
    const torch::Tensor cand_min = min * p;
    const torch::Tensor cand_max = max * p;
    const QuantGrid cand = grid_from_range(cand_min, cand_max, scheme, options);
    const torch::Tensor s = cand.scale.unsqueeze(-1);
    const torch::Tensor z = cand.zero_point.unsqueeze(-1);
    const torch::Tensor dq = dequantize_values(quantize_values(x, s, z, scheme.bits), s, z);
    const torch::Tensor error = (dq - x).abs_().pow_(mse.norm).sum(-1);
    const torch::Tensor improved = error < best_error;
    if (improved.any().item<bool>()) {
      best_error = torch::where(improved, error, best_error);
      best_min = torch::where(improved, cand_min, best_min);
      best_max = torch::where(improved, cand_max, best_max);
      steps_without_gain = 0;
    } else if (mse.patience > 0 && ++steps_without_gain >= mse.patience) {
      break;
    }
  }
  return grid_from_range(best_min, best_max, scheme, options);
}

}  // namespace presso

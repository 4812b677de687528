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

group_grid::ScaleStorage scale_storage(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return group_grid::ScaleStorage::kFloat32;
    case torch::kFloat16:
      return group_grid::ScaleStorage::kFloat16;
    case torch::kBFloat16:
      return group_grid::ScaleStorage::kBFloat16;
    default:
      fail_user("scale dtype {} is not supported (valid: float32, float16, bfloat16)",
                c10::toString(dtype));
  }
}

// t / d by true division on every device: LibTorch's CUDA kernels multiply by the reciprocal of
// a CPU scalar divisor instead, which can differ in the last bit from the CPU's quotient (and
// from the fused GPTQ sweeps' group_grid.h).
torch::Tensor divide(const torch::Tensor& t, double d) {
  return t / torch::full({}, d, t.options());
}

// Rounds scales to the storage dtype, then replaces zeros (all-zero groups, or scales below the
// dtype's smallest subnormal) as compressed-tensors does.
torch::Tensor storable_scale(const torch::Tensor& scale, torch::ScalarType dtype,
                             const std::string& tensor_name) {
  torch::Tensor rounded = scale.to(dtype).to(torch::kFloat32);
  if (torch::isinf(rounded).any().item<bool>()) {
    fail_user(
        "{}a quantization scale overflows {} (largest scale {}); store scales in a wider type",
        tensor_name.empty() ? "" : fmt::format("tensor '{}': ", tensor_name), c10::toString(dtype),
        scale.max().item<float>());
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

// grid_from_range, naming `tensor_name` (when not empty) in errors.
QuantGrid range_grid(const torch::Tensor& min, const torch::Tensor& max, const QuantScheme& scheme,
                     const GridOptions& options, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  validate_scheme(scheme);
  scale_storage(options.scale_dtype);  // validates it
  const torch::Tensor lo = torch::clamp_max(min.to(torch::kFloat32), 0.0);
  const torch::Tensor hi = torch::clamp_min(max.to(torch::kFloat32), 0.0);
  const double levels = static_cast<double>((int64_t{1} << scheme.bits) - 1);  // 2^b − 1

  if (scheme.symmetric) {
    const torch::Tensor absmax = torch::maximum(lo.abs(), hi);
    return {storable_scale(divide(absmax, levels / 2), options.scale_dtype, tensor_name),
            torch::zeros(absmax.sizes(), absmax.options().dtype(torch::kInt32))};
  }

  torch::Tensor scale = storable_scale(divide(hi - lo, levels), options.scale_dtype, tensor_name);
  torch::Tensor zero_point = asymmetric_zero_point(lo, scale, scheme.bits);
  if (options.avoid_qmin_zero_point) {
    const double qmin = static_cast<double>(quant_min(scheme.bits));
    const torch::Tensor at_qmin = zero_point == qmin;
    // With zero point q_min + 1 the codes above it span 2^b − 2 steps, which must reach max.
    const torch::Tensor widened =
        storable_scale(divide(hi, levels - 1), options.scale_dtype, tensor_name);
    scale = torch::where(at_qmin, widened, scale);
    zero_point = torch::where(at_qmin, torch::full_like(zero_point, qmin + 1), zero_point);
  }
  return {scale, zero_point.to(torch::kInt32)};
}

}  // namespace

group_grid::GridRule group_grid_rule(const QuantScheme& scheme, const GridOptions& options) {
  validate_scheme(scheme);
  return {scheme.bits, scheme.symmetric, scale_storage(options.scale_dtype),
          options.avoid_qmin_zero_point};
}

float zero_scale_substitute(torch::ScalarType scale_dtype) {
  return group_grid::zero_scale_substitute(scale_storage(scale_dtype));
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
  return range_grid(min, max, scheme, options, "");
}

GridOptions grid_options_for_columns(const GridOptions& options,
                                     const std::optional<torch::Tensor>& perm, int64_t c1,
                                     int64_t c2) {
  if (!options.mse_column_weight.defined()) return options;
  GridOptions sliced = options;
  torch::Tensor weights = options.mse_column_weight;
  if (perm) weights = weights.index_select(0, perm->to(weights.device()));
  sliced.mse_column_weight = weights.slice(0, c1, c2);
  return sliced;
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
  if (!options.mse) return range_grid(min, max, scheme, options, tensor_name);

  const MseSearch& mse = *options.mse;
  validate_mse(mse);
  torch::Tensor column_weight;  // [1, n_groups, group_size] or undefined
  if (options.mse_column_weight.defined()) {
    if (options.mse_column_weight.numel() != in) {
      fail_internal("tensor '{}': {} MSE column weights for {} columns", tensor_name,
                    options.mse_column_weight.numel(), in);
    }
    column_weight =
        options.mse_column_weight.to(x.device(), torch::kFloat32).reshape({1, groups, in / groups});
  }
  torch::Tensor best_error = torch::full_like(min, std::numeric_limits<float>::infinity());
  torch::Tensor best_min = min;
  torch::Tensor best_max = max;
  const int steps = static_cast<int>(mse.maxshrink * mse.grid);
  int steps_without_gain = 0;
  for (int i = 0; i < steps; ++i) {
    const double p = 1.0 - i / mse.grid;
    const torch::Tensor cand_min = min * p;
    const torch::Tensor cand_max = max * p;
    const QuantGrid cand = range_grid(cand_min, cand_max, scheme, options, tensor_name);
    const torch::Tensor s = cand.scale.unsqueeze(-1);
    const torch::Tensor z = cand.zero_point.unsqueeze(-1);
    const torch::Tensor dq = dequantize_values(quantize_values(x, s, z, scheme.bits), s, z);
    torch::Tensor error = (dq - x).abs_().pow_(mse.norm);
    if (column_weight.defined()) error.mul_(column_weight);
    error = error.sum(-1);
    const torch::Tensor improved = error < best_error;
    // Only early stopping needs to know on the host whether any group improved; asking waits
    // for the device.
    if (mse.patience > 0) {
      if (!improved.any().item<bool>()) {
        if (++steps_without_gain >= mse.patience) break;
        continue;
      }
      steps_without_gain = 0;
    }
    best_error = torch::where(improved, error, best_error);
    best_min = torch::where(improved, cand_min, best_min);
    best_max = torch::where(improved, cand_max, best_max);
  }
  return range_grid(best_min, best_max, scheme, options, tensor_name);
}

}  // namespace presso

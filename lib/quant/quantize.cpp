#include "lib/quant/quantize.h"

#include "lib/common/errors.h"
#include "lib/quant/tensor_checks.h"

namespace presso {

QuantizedWeight quantize(const torch::Tensor& weight, const QuantGrid& grid,
                         const QuantScheme& scheme, const std::optional<torch::Tensor>& g_idx,
                         const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  if (weight.dim() != 2) {
    fail_user("tensor '{}': expected a 2-d weight [out, in], got {}", tensor_name,
              shape_string(weight));
  }
  const int64_t out = weight.size(0);
  const int64_t in = weight.size(1);
  validate_scheme(scheme, in, tensor_name);
  const int64_t groups = group_count(scheme, in);
  if (grid.scale.sizes() != torch::IntArrayRef({out, groups}) ||
      grid.zero_point.sizes() != grid.scale.sizes()) {
    fail_user(
        "tensor '{}': grid scale {} and zero point {} do not match [out, n_groups] = [{}, {}]",
        tensor_name, shape_string(grid.scale), shape_string(grid.zero_point), out, groups);
  }
  const torch::Tensor w = weight.to(torch::kFloat32);
  const torch::Tensor scale = grid.scale.to(torch::kFloat32);
  const torch::Tensor zero_point = grid.zero_point.to(torch::kInt32);

  torch::Tensor q;
  std::optional<torch::Tensor> kept_g_idx;
  if (g_idx) {
    expect_g_idx(*g_idx, in, groups, tensor_name);
    const torch::Tensor index = g_idx->to(torch::kLong);
    // Per-column scale and zero point: [out, in].
    q = quantize_values(w, scale.index_select(1, index), zero_point.index_select(1, index),
                        scheme.bits);
    kept_g_idx = g_idx->to(torch::kInt32);
  } else {
    // [out, n_groups, group_size] against [out, n_groups, 1].
    q = quantize_values(w.reshape({out, groups, in / groups}), scale.unsqueeze(-1),
                        zero_point.unsqueeze(-1), scheme.bits)
            .reshape({out, in});
  }
  return {q.to(torch::kInt8), scale, zero_point, kept_g_idx, scheme};
}

QuantizedWeight quantize_rtn(const torch::Tensor& weight, const QuantScheme& scheme,
                             const GridOptions& options, const std::string& tensor_name) {
  return quantize(weight, compute_grid(weight, scheme, options, tensor_name), scheme, std::nullopt,
                  tensor_name);
}

torch::Tensor column_groups(const QuantizedWeight& weight) {
  const int64_t in = weight.q.size(1);
  if (weight.g_idx) return weight.g_idx->to(torch::kInt32);
  return torch::arange(in, torch::kInt32).div_(effective_group_size(weight.scheme, in), "floor");
}

torch::Tensor dequantize(const QuantizedWeight& weight) {
  torch::NoGradGuard no_grad;
  const int64_t out = weight.q.size(0);
  const int64_t in = weight.q.size(1);
  if (weight.g_idx) {
    const torch::Tensor index = weight.g_idx->to(torch::kLong);
    return dequantize_values(weight.q, weight.scale.index_select(1, index),
                             weight.zero_point.index_select(1, index));
  }
  const int64_t groups = weight.scale.size(1);
  return dequantize_values(weight.q.reshape({out, groups, in / groups}), weight.scale.unsqueeze(-1),
                           weight.zero_point.unsqueeze(-1))
      .reshape({out, in});
}

void check_quantized_weight(const QuantizedWeight& weight, const std::string& tensor_name) {
  const auto bad = [&](const std::string& what) {
    fail_internal("tensor '{}': malformed quantized weight: {}", tensor_name, what);
  };
  if (weight.q.dim() != 2) bad("codes " + shape_string(weight.q) + " are not [out, in]");
  const int64_t out = weight.q.size(0);
  const int64_t in = weight.q.size(1);
  const int64_t groups = weight.scale.dim() == 2 ? weight.scale.size(1) : 0;
  try {
    validate_scheme(weight.scheme, in, tensor_name);
    if (weight.g_idx) expect_g_idx(*weight.g_idx, in, groups, tensor_name);
  } catch (const UserError& e) {
    bad(e.what());
  }
  if (weight.q.scalar_type() != torch::kInt8) bad("codes are not int8");
  if (weight.scale.sizes() != torch::IntArrayRef({out, group_count(weight.scheme, in)})) {
    bad("scale " + shape_string(weight.scale) + " is not [out, n_groups]");
  }
  if (weight.zero_point.sizes() != weight.scale.sizes() ||
      weight.zero_point.scalar_type() != torch::kInt32) {
    bad("zero point " + shape_string(weight.zero_point) + " is not int32 [out, n_groups]");
  }
  const int bits = weight.scheme.bits;
  if (weight.q.numel() > 0 && (weight.q.min().item<int64_t>() < quant_min(bits) ||
                               weight.q.max().item<int64_t>() > quant_max(bits))) {
    bad(fmt::format("codes leave [{}, {}]", quant_min(bits), quant_max(bits)));
  }
  if (weight.zero_point.numel() == 0) return;
  if (weight.scheme.symmetric && weight.zero_point.abs().max().item<int64_t>() != 0) {
    bad("a symmetric scheme has non-zero zero points");
  }
  if (weight.zero_point.min().item<int64_t>() < quant_min(bits) ||
      weight.zero_point.max().item<int64_t>() > quant_max(bits)) {
    bad(fmt::format("zero points leave [{}, {}]", quant_min(bits), quant_max(bits)));
  }
}

}  // namespace presso

#include "lib/quant/pack_compressed_tensors.h"

#include "lib/common/errors.h"
#include "lib/quant/bitpack.h"
#include "lib/quant/tensor_checks.h"

namespace presso {
namespace {

int64_t words_for(int64_t count, int bits) { return (count * bits + 31) / 32; }

}  // namespace

CompressedTensorsPacked pack_compressed_tensors(const QuantizedWeight& weight,
                                                torch::ScalarType scale_dtype,
                                                const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  check_quantized_weight(weight, tensor_name);
  const int bits = weight.scheme.bits;
  const int64_t offset = unsigned_offset(bits);
  CompressedTensorsPacked packed;
  // pack_to_int32 adds 2^(b−1) and packs along dim 1 (the input dimension) by default.
  packed.weight_packed = pack_lsb_first(weight.q.to(torch::kInt32) + offset, bits);
  packed.weight_scale = exact_scale_cast(weight.scale, scale_dtype, tensor_name);
  if (!weight.scheme.symmetric) {
    // Zero points go through pack_to_int32(..., packed_dim=0): dense along the output rows.
    packed.weight_zero_point =
        pack_lsb_first((weight.zero_point + offset).t(), bits).t().contiguous();
  }
  packed.weight_shape = torch::tensor({weight.q.size(0), weight.q.size(1)}, torch::kLong);
  if (weight.g_idx) packed.weight_g_idx = weight.g_idx->to(torch::kInt32);
  return packed;
}

QuantizedWeight unpack_compressed_tensors(const CompressedTensorsPacked& packed,
                                          const QuantScheme& scheme,
                                          const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  expect_tensor(packed.weight_shape, {2}, torch::kLong, "weight_shape", tensor_name);
  const int64_t out = packed.weight_shape[0].item<int64_t>();
  const int64_t in = packed.weight_shape[1].item<int64_t>();
  validate_scheme(scheme, in, tensor_name);
  const int bits = scheme.bits;
  const int64_t groups = group_count(scheme, in);
  const int64_t offset = unsigned_offset(bits);
  expect_tensor(packed.weight_packed, {out, words_for(in, bits)}, torch::kInt32, "weight_packed",
                tensor_name);
  if (packed.weight_scale.sizes() != torch::IntArrayRef({out, groups}) ||
      !packed.weight_scale.is_floating_point()) {
    fail_user("tensor '{}': weight_scale must be floating point [{}, {}], got {} {}", tensor_name,
              out, groups, c10::toString(packed.weight_scale.scalar_type()),
              shape_string(packed.weight_scale));
  }

  QuantizedWeight weight;
  weight.scheme = scheme;
  weight.q = (unpack_lsb_first(packed.weight_packed, bits, in) - offset).to(torch::kInt8);
  weight.scale = packed.weight_scale.to(torch::kFloat32);
  if (scheme.symmetric) {
    if (packed.weight_zero_point) {
      fail_user("tensor '{}': weight_zero_point is present but the scheme is symmetric",
                tensor_name);
    }
    weight.zero_point = torch::zeros({out, groups}, torch::kInt32);
  } else {
    if (!packed.weight_zero_point) {
      fail_user("tensor '{}': weight_zero_point is missing for an asymmetric scheme", tensor_name);
    }
    expect_tensor(*packed.weight_zero_point, {words_for(out, bits), groups}, torch::kInt32,
                  "weight_zero_point", tensor_name);
    weight.zero_point =
        (unpack_lsb_first(packed.weight_zero_point->t().contiguous(), bits, out) - offset)
            .t()
            .contiguous();
  }
  if (packed.weight_g_idx) {
    expect_g_idx(*packed.weight_g_idx, in, groups, tensor_name);
    weight.g_idx = non_default_g_idx(*packed.weight_g_idx, effective_group_size(scheme, in));
  }
  return weight;
}

}  // namespace presso

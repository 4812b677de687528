#include "lib/quant/pack_gptq.h"

#include "lib/common/errors.h"
#include "lib/quant/bitpack.h"
#include "lib/quant/tensor_checks.h"

namespace presso {
namespace {

void check_gptq_shape(int bits, int64_t out, int64_t in, const std::string& tensor_name) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
    fail_user("tensor '{}': GPTQ stores 2, 3, 4 or 8 bits, not {}", tensor_name, bits);
  }
  if ((in * bits) % 32 != 0 || (out * bits) % 32 != 0) {
    fail_user(
        "tensor '{}': GPTQ packs whole int32 words, so in·bits and out·bits must be multiples of "
        "32; [out, in] = [{}, {}] at {} bits is not",
        tensor_name, out, in, bits);
  }
}

// The stored zero point is z − zero_bias: 1 for v1, 0 for v2.
GptqPacked pack_gptq(const QuantizedWeight& weight, int zero_bias, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  check_quantized_weight(weight, tensor_name);
  const int bits = weight.scheme.bits;
  const int64_t out = weight.q.size(0);
  const int64_t in = weight.q.size(1);
  check_gptq_shape(bits, out, in, tensor_name);
  const int64_t offset = unsigned_offset(bits);

  const torch::Tensor zeros = weight.zero_point + offset;  // [out, n_groups] unsigned z
  if (zero_bias == 1 && zeros.numel() > 0 && zeros.min().item<int64_t>() == 0) {
    const int64_t count = (zeros == 0).sum().item<int64_t>();
    fail_user(
        "tensor '{}': {} group(s) have zero point 0, which GPTQ v1 cannot store (it writes z − 1 "
        "and loaders read back 2^{} for it); quantize with GridOptions::avoid_qmin_zero_point, "
        "or write compressed-tensors instead",
        tensor_name, count, bits);
  }

  GptqPacked packed;
  // AutoGPTQ's pack walks the input dimension of the transposed codes [in, out], packing down
  // each column; for 3 bits its 10 + 1 + 10 + 1 + 10 value pattern over 3 words is exactly the
  // dense bit string. Packing rows of [out, in] and transposing gives the same words.
  packed.qweight = pack_lsb_first(weight.q.to(torch::kInt32) + offset, bits).t().contiguous();
  packed.qzeros = pack_lsb_first((zeros - zero_bias).t(), bits);  // [n_groups, out·b/32]
  packed.scales = exact_scale_cast(weight.scale.t(), torch::kFloat16, tensor_name);
  packed.g_idx = column_groups(weight).contiguous();
  return packed;
}

QuantizedWeight unpack_gptq(const GptqPacked& packed, const QuantScheme& scheme, int zero_bias,
                            const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  validate_scheme(scheme);
  const int bits = scheme.bits;
  if (packed.qweight.dim() != 2) {
    fail_user("tensor '{}': qweight must be 2-d, got {}", tensor_name,
              shape_string(packed.qweight));
  }
  const int64_t in = packed.qweight.size(0) * 32 / bits;
  const int64_t out = packed.qweight.size(1);
  check_gptq_shape(bits, out, in, tensor_name);
  validate_scheme(scheme, in, tensor_name);
  const int64_t groups = group_count(scheme, in);
  const int64_t offset = unsigned_offset(bits);
  expect_tensor(packed.qweight, {in * bits / 32, out}, torch::kInt32, "qweight", tensor_name);
  expect_tensor(packed.qzeros, {groups, out * bits / 32}, torch::kInt32, "qzeros", tensor_name);
  if (packed.scales.sizes() != torch::IntArrayRef({groups, out}) ||
      !packed.scales.is_floating_point()) {
    fail_user("tensor '{}': scales must be floating point [{}, {}], got {}", tensor_name, groups,
              out, shape_string(packed.scales));
  }
  expect_g_idx(packed.g_idx, in, groups, tensor_name);

  QuantizedWeight weight;
  weight.scheme = scheme;
  weight.q =
      (unpack_lsb_first(packed.qweight.t().contiguous(), bits, in) - offset).to(torch::kInt8);
  // v1: stored z − 1, read back + 1 without re-masking (vLLM q_gemm.cu: zeros + zero_offset).
  weight.zero_point =
      (unpack_lsb_first(packed.qzeros, bits, out) + zero_bias - offset).t().contiguous();
  weight.scale = packed.scales.t().to(torch::kFloat32).contiguous();
  weight.g_idx = non_default_g_idx(packed.g_idx, effective_group_size(scheme, in));
  return weight;
}

}  // namespace

GptqPacked pack_gptq_v1(const QuantizedWeight& weight, const std::string& tensor_name) {
  return pack_gptq(weight, 1, tensor_name);
}

GptqPacked pack_gptq_v2(const QuantizedWeight& weight, const std::string& tensor_name) {
  return pack_gptq(weight, 0, tensor_name);
}

QuantizedWeight unpack_gptq_v1(const GptqPacked& packed, const QuantScheme& scheme,
                               const std::string& tensor_name) {
  return unpack_gptq(packed, scheme, 1, tensor_name);
}

QuantizedWeight unpack_gptq_v2(const GptqPacked& packed, const QuantScheme& scheme,
                               const std::string& tensor_name) {
  return unpack_gptq(packed, scheme, 0, tensor_name);
}

}  // namespace presso

#include "lib/quant/pack_awq.h"

#include "lib/common/errors.h"
#include "lib/quant/bitpack.h"
#include "lib/quant/tensor_checks.h"

namespace presso {
namespace {

constexpr int kAwqBits = 4;
constexpr int64_t kPerWord = 8;

// Nibble i of word c holds column 8c + awq_order()[i]; column 8c + j sits in nibble
// awq_reverse_order()[j] (AWQ_ORDER / AWQ_REVERSE_ORDER of awq/utils/packing_utils.py).
torch::Tensor awq_order() { return torch::tensor({0, 2, 4, 6, 1, 3, 5, 7}, torch::kLong); }
torch::Tensor awq_reverse_order() { return torch::tensor({0, 4, 1, 5, 2, 6, 3, 7}, torch::kLong); }

void check_awq_shape(int bits, int64_t out, const std::string& tensor_name) {
  if (bits != kAwqBits) {
    fail_user("tensor '{}': AutoAWQ GEMM stores 4 bits only, not {}", tensor_name, bits);
  }
  if (out % kPerWord != 0) {
    fail_user("tensor '{}': AutoAWQ GEMM needs an output width divisible by 8, got {}", tensor_name,
              out);
  }
}

// values [rows, out] unsigned → [rows, out/8] words, columns interleaved within each word.
torch::Tensor pack_interleaved(const torch::Tensor& values) {
  const int64_t rows = values.size(0);
  const int64_t out = values.size(1);
  const torch::Tensor nibble_order =
      values.reshape({rows, out / kPerWord, kPerWord}).index_select(2, awq_order());
  return pack_lsb_first(nibble_order.reshape({rows, out}), kAwqBits);
}

torch::Tensor unpack_interleaved(const torch::Tensor& words, int64_t out) {
  const int64_t rows = words.size(0);
  return unpack_lsb_first(words, kAwqBits, out)
      .reshape({rows, out / kPerWord, kPerWord})
      .index_select(2, awq_reverse_order())
      .reshape({rows, out});
}

}  // namespace

AwqPacked pack_awq_gemm(const QuantizedWeight& weight, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  check_quantized_weight(weight, tensor_name);
  const int64_t out = weight.q.size(0);
  check_awq_shape(weight.scheme.bits, out, tensor_name);
  if (weight.g_idx) {
    fail_user(
        "tensor '{}': AutoAWQ GEMM has no g_idx, so columns must be grouped consecutively "
        "(no `group` activation order)",
        tensor_name);
  }
  const int64_t offset = unsigned_offset(kAwqBits);
  AwqPacked packed;
  packed.qweight = pack_interleaved((weight.q.to(torch::kInt32) + offset).t());  // [in, out/8]
  packed.qzeros = pack_interleaved((weight.zero_point + offset).t());            // [G, out/8]
  packed.scales = exact_scale_cast(weight.scale.t(), torch::kFloat16, tensor_name);
  return packed;
}

QuantizedWeight unpack_awq_gemm(const AwqPacked& packed, const QuantScheme& scheme,
                                const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  if (packed.qweight.dim() != 2) {
    fail_user("tensor '{}': qweight must be 2-d, got {}", tensor_name,
              shape_string(packed.qweight));
  }
  const int64_t in = packed.qweight.size(0);
  const int64_t out = packed.qweight.size(1) * kPerWord;
  validate_scheme(scheme, in, tensor_name);
  check_awq_shape(scheme.bits, out, tensor_name);
  const int64_t groups = group_count(scheme, in);
  expect_tensor(packed.qweight, {in, out / kPerWord}, torch::kInt32, "qweight", tensor_name);
  expect_tensor(packed.qzeros, {groups, out / kPerWord}, torch::kInt32, "qzeros", tensor_name);
  if (packed.scales.sizes() != torch::IntArrayRef({groups, out}) ||
      !packed.scales.is_floating_point()) {
    fail_user("tensor '{}': scales must be floating point [{}, {}], got {}", tensor_name, groups,
              out, shape_string(packed.scales));
  }
  const int64_t offset = unsigned_offset(kAwqBits);
  QuantizedWeight weight;
  weight.scheme = scheme;
  weight.q = (unpack_interleaved(packed.qweight, out) - offset).t().contiguous().to(torch::kInt8);
  weight.zero_point = (unpack_interleaved(packed.qzeros, out) - offset).t().contiguous();
  weight.scale = packed.scales.t().to(torch::kFloat32).contiguous();
  return weight;
}

}  // namespace presso

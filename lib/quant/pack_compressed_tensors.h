// compressed-tensors `pack-quantized` tensors of one linear, as written since compressed-tensors
// 0.18 (src/compressed_tensors/compressors/pack_quantized/helpers.py pack_to_int32 and
// pack_quantized/base.py PackedQuantizationCompressor, tag 0.18.0; docs/formats.md).
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>

#include "lib/quant/quantize.h"

namespace presso {

struct CompressedTensorsPacked {
  // [out, ceil(in·b/32)] int32: codes q + 2^(b−1), dense LSB first along the input dimension.
  torch::Tensor weight_packed;
  torch::Tensor weight_scale;  // [out, n_groups] in the checkpoint's scale dtype
  // [ceil(out·b/32), n_groups] int32: zero points + 2^(b−1), dense along dim 0; asymmetric only.
  std::optional<torch::Tensor> weight_zero_point;
  torch::Tensor weight_shape;                 // [2] int64: out, in
  std::optional<torch::Tensor> weight_g_idx;  // [in] int32; only for `group` activation order
};

// Scales are stored as `scale_dtype`; they must already be exactly representable in it
// (GridOptions::scale_dtype), else InternalError, so the file dequantizes to what was measured.
CompressedTensorsPacked pack_compressed_tensors(const QuantizedWeight& weight,
                                                torch::ScalarType scale_dtype,
                                                const std::string& tensor_name = "");

// `scheme` comes from the checkpoint's config_groups (num_bits, group_size, symmetric).
// Throws UserError naming the tensor when shapes disagree with it.
QuantizedWeight unpack_compressed_tensors(const CompressedTensorsPacked& packed,
                                          const QuantScheme& scheme,
                                          const std::string& tensor_name = "");

}  // namespace presso

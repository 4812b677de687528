// lib/model: linears that a quantized checkpoint stores packed — compressed-tensors
// `pack-quantized`, GPTQ (`checkpoint_format` `gptq` or `gptq_v2`) and AutoAWQ GEMM — described by
// config.json's `quantization_config`, and read back dequantized so that every Linear in memory is
// still an fp32 [out, in] weight. Layouts and config fields: docs/formats.md.
#pragma once

#include <torch/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/common/bounded_regex.h"
#include "lib/io/safetensors.h"
#include "lib/quant/quantize.h"

namespace presso {

enum class PackedMethod { kNone, kCompressedTensors, kGptq, kAwq };

class PackedWeights {
 public:
  // From ModelConfig::quantization_config (the raw JSON; empty: none); `config_path` is named in
  // errors. UserError naming config.json and the key for a quant_method, format, checkpoint
  // format or setting presso does not read (marlin, awq gemv, activation or kv-cache
  // quantization, transforms, ...), with every problem of the object listed. `dtype` is
  // config.json's (ModelConfig::dtype): scales are cast to it when it is float16 or bfloat16, as
  // serving engines load them into parameters of the model's dtype.
  static PackedWeights parse(const std::string& quantization_config,
                             const std::string& config_path, const std::string& dtype = "");

  PackedMethod method() const { return method_; }
  bool any() const { return method_ != PackedMethod::kNone; }
  // One line for `presso inspect`, e.g. "gptq (checkpoint_format gptq): 4-bit asymmetric group
  // 128, desc_act false"; "none" when nothing is packed.
  std::string describe() const;

  // Whether linear `name` (full name, no suffix) is stored packed. compressed-tensors: the config
  // decides (a config group targets it and `ignore` does not list it), or it is stored
  // `sparse-24-bitmask` (its `.bitmask` is in the store); GPTQ / AWQ, whose configs name no
  // modules: `<name>.qweight` is in the store.
  bool is_packed(const std::string& name, const TensorStore& store) const;
  // The stored tensors of a packed linear that are present in `store`, in layout order.
  std::vector<std::string> stored_tensors(const std::string& name, const TensorStore& store) const;
  // Reads and unpacks a packed linear that config.json says is [out, in], its scales cast to the
  // checkpoint's dtype (parse()). UserError naming the directory and tensor when one is missing
  // or its shape disagrees.
  QuantizedWeight load(const std::string& name, const TensorStore& store, int64_t out,
                       int64_t in) const;
  // dequantize(load(...)), or a sparse-24-bitmask linear decompressed: fp32 [out, in] on the CPU.
  torch::Tensor load_dequantized(const std::string& name, const TensorStore& store, int64_t out,
                                 int64_t in) const;

 private:
  struct Target {
    std::string text;                   // as written: "Linear", a full name, or "re:<pattern>"
    std::optional<BoundedRegex> regex;  // for "re:" targets
    std::string described;  // "config.json: quantization_config targets 're:...'", for messages
    // UserError naming the target when its regex gives up (catastrophic backtracking).
    bool matches(const std::string& name) const;
  };
  struct Group {
    std::string name;  // "group_0"
    std::vector<Target> targets;
    QuantScheme scheme;
    bool actorder_group = false;
  };

  struct ConfigParser;  // parse()'s per-method config readers (packed_config.cpp)
  struct Reader;        // the per-method tensor loaders (packed_weights.cpp)

  const Group* group_of(const std::string& name) const;  // compressed-tensors only
  bool sparse_24(const std::string& name, const TensorStore& store) const;
  const QuantScheme& scheme_of(const std::string& name) const;

  PackedMethod method_ = PackedMethod::kNone;
  std::string version_;  // compressed-tensors version, or GPTQ checkpoint_format, or AWQ version
  QuantScheme scheme_;   // GPTQ / AWQ: one for the model
  bool desc_act_ = false;
  std::vector<Group> groups_;
  std::vector<Target> ignore_;
  std::vector<std::string> not_converted_;  // AWQ modules_to_not_convert
  bool sparse_24_ = false;  // compressed-tensors sparsity_config format sparse-24-bitmask
  std::optional<torch::ScalarType> scale_dtype_;  // what engines cast the scales to
};

}  // namespace presso

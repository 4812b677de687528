// config.json's `quantization_config` for compressed-tensors, GPTQ (v1 and v2) and AutoAWQ GEMM.
#include "lib/export/quantization_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <tuple>

#include "lib/common/errors.h"
#include "lib/common/version.h"
#include "lib/model/model.h"

namespace presso {
namespace {

using nlohmann::json;

// compressed-tensors' QuantizationArgs.model_dump() for a weight-only int scheme, as
// llm-compressor leaves it after calibration (quant_args.py, 0.18.0): the observer is the
// memoryless min-max default, scale_dtype unset, zp_dtype serialised only when asymmetric
// (str(torch.int8)).
json weight_args(const QuantScheme& scheme, bool g_idx) {
  const bool channel = scheme.group_size == -1;
  return {
      {"actorder", g_idx ? json("group") : json(nullptr)},
      {"block_structure", nullptr},
      {"dynamic", false},
      {"group_size", channel ? json(nullptr) : json(scheme.group_size)},
      {"num_bits", scheme.bits},
      {"observer", "memoryless_minmax"},
      {"observer_kwargs", json::object()},
      {"scale_dtype", nullptr},
      {"strategy", channel ? "channel" : "group"},
      {"symmetric", scheme.symmetric},
      {"type", "int"},
      {"zp_dtype", scheme.symmetric ? json(nullptr) : json("torch.int8")},
  };
}

const QuantScheme& only_scheme(const std::vector<LinearPlan>& quantized, const char* format) {
  if (quantized.empty()) fail_internal("{} quantization_config without quantized linears", format);
  return *quantized.front().scheme;
}

}  // namespace

bool sparse_24_storage(const Model& model, const std::vector<LinearPlan>& stored) {
  // GPT-2's Conv1D stores [in, out]: upstream's groups of four would run along the outputs.
  for (const auto& spec : model.family().block_linears)
    if (spec.conv1d) return false;
  bool any = false;
  for (const auto& linear : stored) {
    if (!linear.sparsity) continue;
    if (linear.scheme || *linear.sparsity != SparsityPattern{2, 4}) return false;
    any = true;
  }
  return any;
}

std::optional<json> compressed_tensors_sparsity(const Model& model,
                                                const std::vector<LinearPlan>& stored,
                                                double global_sparsity) {
  std::vector<std::string> targets;
  std::optional<SparsityPattern> shared;
  bool same = true;
  for (const auto& linear : stored) {
    if (!linear.sparsity) continue;
    if (shared && *shared != *linear.sparsity) same = false;
    shared = *linear.sparsity;
    targets.push_back(linear.name);
  }
  if (targets.empty()) return std::nullopt;
  std::vector<std::string> ignore;
  size_t block_linears = 0;
  for (const auto& linear : model.linears()) {
    if (linear.block >= 0) ++block_linears;
    if (std::find(targets.begin(), targets.end(), linear.name) == targets.end()) {
      ignore.push_back(linear.name);
    }
  }
  // "Linear" when every block linear is pruned, as llm-compressor groups them by module type
  // (transformers/compression/sparsity_metadata_config.py).
  const bool all_block = targets.size() == block_linears &&
                         std::all_of(targets.begin(), targets.end(), [&](const std::string& n) {
                           return std::find(ignore.begin(), ignore.end(), n) == ignore.end();
                         });
  // SparsityCompressionConfig.model_dump() (compressed-tensors config/base.py): format,
  // global_sparsity (a fraction), ignore, sparsity_structure ("2:4" or "unstructured"), targets.
  return json{
      {"format", sparse_24_storage(model, stored) ? "sparse-24-bitmask" : "dense"},
      {"global_sparsity", global_sparsity},
      {"ignore", ignore},
      {"sparsity_structure",
       same && shared->structured() ? sparsity_pattern_name(*shared) : std::string("unstructured")},
      {"targets", all_block ? json::array({"Linear"}) : json(targets)},
  };
}

json compressed_tensors_config(const std::vector<LinearPlan>& quantized,
                               const std::vector<std::string>& ignore,
                               const std::optional<json>& sparsity) {
  const json sparsity_config = sparsity ? *sparsity : json::object();
  if (quantized.empty()) {
    // ModelCompressor.update_config without a quantization config.
    return {{"quant_method", "compressed-tensors"},
            {"sparsity_config", sparsity_config},
            {"transform_config", json::object()},
            {"version", kCompressedTensorsVersion}};
  }
  // Groups in the order their scheme is first seen; QuantizationConfig.from_pretrained names
  // them "group_<i>" the same way (quant_config.py).
  using Key = std::tuple<int, int, bool, bool>;
  std::vector<Key> keys;
  std::vector<std::vector<std::string>> members;
  for (const auto& linear : quantized) {
    const Key key{linear.scheme->bits, linear.scheme->group_size, linear.scheme->symmetric,
                  linear.g_idx};
    size_t index = 0;
    while (index < keys.size() && keys[index] != key) ++index;
    if (index == keys.size()) {
      keys.push_back(key);
      members.emplace_back();
    }
    members[index].push_back(linear.name);
  }
  json groups = json::object();
  for (size_t i = 0; i < keys.size(); ++i) {
    const QuantScheme scheme{std::get<0>(keys[i]), std::get<1>(keys[i]), std::get<2>(keys[i])};
    // With one group every linear not in `ignore` is quantized, which "Linear" says (vLLM
    // matches the target against its linear layers); with several, each names its own.
    const json targets = keys.size() == 1 ? json::array({"Linear"}) : json(members[i]);
    groups[fmt::format("group_{}", i)] = {
        {"format", "pack-quantized"},
        {"input_activations", nullptr},
        {"output_activations", nullptr},
        {"targets", targets},
        {"weights", weight_args(scheme, std::get<3>(keys[i]))},
    };
  }
  // ModelCompressor.update_config (model_compressor.py, 0.18.0): version, quant_method, an
  // empty sparsity_config and transform_config, then QuantizationConfig.model_dump() without
  // quant_method.
  return {
      {"config_groups", groups},
      {"format", "pack-quantized"},
      {"global_compression_ratio", nullptr},
      {"ignore", ignore},
      {"kv_cache_scheme", nullptr},
      {"quant_method", "compressed-tensors"},
      {"quantization_status", "compressed"},
      {"sparsity_config", sparsity_config},
      {"transform_config", json::object()},
      {"version", kCompressedTensorsVersion},
  };
}

const char* gptq_checkpoint_format(const QuantScheme& scheme) {
  return scheme.symmetric ? "gptq" : "gptq_v2";
}

json gptq_config(const std::vector<LinearPlan>& quantized) {
  const QuantScheme& scheme = only_scheme(quantized, "gptq");
  bool desc_act = false;
  for (const auto& linear : quantized) desc_act = desc_act || linear.g_idx;
  // The keys vLLM's GPTQConfig.from_config reads (bits, group_size, desc_act, lm_head,
  // checkpoint_format), those transformers' GPTQConfig and GPTQModel's QuantizeConfig read (sym,
  // format, pack_dtype), and GPTQModel's informational calibration settings.
  return {
      {"bits", scheme.bits},
      {"checkpoint_format", gptq_checkpoint_format(scheme)},
      {"damp_percent", 0.01},
      {"desc_act", desc_act},
      {"format", gptq_checkpoint_format(scheme)},
      {"group_size", scheme.group_size},
      {"lm_head", false},
      {"meta", {{"quantizer", {std::string("presso:") + presso_version()}}}},
      {"pack_dtype", "int32"},
      {"quant_method", "gptq"},
      {"static_groups", false},
      {"sym", scheme.symmetric},
      {"true_sequential", true},
  };
}

json awq_config(const std::vector<LinearPlan>& quantized,
                const std::vector<std::string>& not_converted) {
  const QuantScheme& scheme = only_scheme(quantized, "awq");
  // AutoAWQ's AwqConfig.to_transformers_dict (awq/models/_config.py).
  return {
      {"bits", scheme.bits},
      {"group_size", scheme.group_size},
      {"modules_to_not_convert", not_converted.empty() ? json(nullptr) : json(not_converted)},
      {"quant_method", "awq"},
      {"version", "gemm"},
      {"zero_point", true},
  };
}

}  // namespace presso

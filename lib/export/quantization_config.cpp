// config.json's `quantization_config` for compressed-tensors, GPTQ v1 and AutoAWQ GEMM.
#include "lib/export/quantization_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>
#include <tuple>

#include "lib/common/errors.h"
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

const QuantScheme& only_scheme(const std::vector<PlannedQuantLinear>& quantized,
                               const char* format) {
  if (quantized.empty()) fail_internal("{} quantization_config without quantized linears", format);
  return quantized.front().scheme;
}

}  // namespace

std::vector<std::string> block_linear_names(const Model& model) {
  std::vector<std::string> names;
  const FamilySpec& family = model.family();
  for (int block = 0; block < model.num_blocks(); ++block)
    for (const auto& spec : family.block_linears)
      names.push_back(family.block_name(block) + spec.name);
  return names;
}

std::vector<std::string> model_linear_names(const Model& model) {
  const FamilySpec& family = model.family();
  std::vector<std::string> names;
  if (family.project_in) names.push_back(family.prefix + family.project_in->name);
  if (family.project_out) names.push_back(family.prefix + family.project_out->name);
  for (auto& name : block_linear_names(model)) names.push_back(std::move(name));
  names.push_back(family.lm_head);
  return names;
}

json compressed_tensors_config(const std::vector<PlannedQuantLinear>& quantized,
                               const std::vector<std::string>& ignore) {
  // Groups in the order their scheme is first seen; QuantizationConfig.from_pretrained names
  // them "group_<i>" the same way (quant_config.py).
  using Key = std::tuple<int, int, bool, bool>;
  std::vector<Key> keys;
  std::vector<std::vector<std::string>> members;
  for (const auto& linear : quantized) {
    const Key key{linear.scheme.bits, linear.scheme.group_size, linear.scheme.symmetric,
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
      {"sparsity_config", json::object()},
      {"transform_config", json::object()},
      {"version", kCompressedTensorsVersion},
  };
}

json gptq_config(const std::vector<PlannedQuantLinear>& quantized) {
  const QuantScheme& scheme = only_scheme(quantized, "gptq");
  bool desc_act = false;
  for (const auto& linear : quantized) desc_act = desc_act || linear.g_idx;
  // The keys vLLM's GPTQConfig.from_config reads (bits, group_size, desc_act, lm_head,
  // checkpoint_format), those transformers' GPTQConfig and GPTQModel's QuantizeConfig read (sym,
  // format, pack_dtype), and GPTQModel's informational calibration settings.
  return {
      {"bits", scheme.bits},
      {"checkpoint_format", "gptq"},
      {"damp_percent", 0.01},
      {"desc_act", desc_act},
      {"format", "gptq"},
      {"group_size", scheme.group_size},
      {"lm_head", false},
      {"meta", {{"quantizer", {std::string("presso:") + PRESSO_VERSION}}}},
      {"pack_dtype", "int32"},
      {"quant_method", "gptq"},
      {"static_groups", false},
      {"sym", scheme.symmetric},
      {"true_sequential", true},
  };
}

json awq_config(const std::vector<PlannedQuantLinear>& quantized,
                const std::vector<std::string>& not_converted) {
  const QuantScheme& scheme = only_scheme(quantized, "awq");
  // AutoAWQ's AwqConfig.to_transformers_dict (awq/models/_config.py).
  return {
      {"bits", scheme.bits},
      {"group_size", scheme.group_size},
      {"modules_to_not_convert", not_converted.empty() ? json(nullptr) : json(not_converted)},
      {"quant_method", "awq"},
      {"version", "gemm"},
      {"zero_point", !scheme.symmetric},
  };
}

std::optional<json> quantization_config_for(OutputFormat format, const Model& model,
                                            const std::vector<PlannedQuantLinear>& quantized) {
  if (format == OutputFormat::kDense) return std::nullopt;
  const auto problems = checkpoint_problems(format, model, quantized);
  if (!problems.empty()) {
    throw UserError(fmt::format("cannot write a {} checkpoint:\n  - {}", output_format_name(format),
                                fmt::join(problems, "\n  - ")));
  }
  std::set<std::string> done;
  for (const auto& linear : quantized) done.insert(linear.name);
  std::vector<std::string> unquantized;
  for (const auto& name : model_linear_names(model))
    if (!done.count(name)) unquantized.push_back(name);
  switch (format) {
    case OutputFormat::kCompressedTensors:
      if (quantized.empty()) return std::nullopt;
      return compressed_tensors_config(quantized, unquantized);
    case OutputFormat::kGptq:
      return gptq_config(quantized);
    case OutputFormat::kAwq: {
      // lm_head is never converted by AutoAWQ, transformers or vLLM's awq; list the rest.
      std::vector<std::string> not_converted;
      for (const auto& name : unquantized)
        if (name != model.family().lm_head) not_converted.push_back(name);
      return awq_config(quantized, not_converted);
    }
    case OutputFormat::kDense:
      break;
  }
  return std::nullopt;
}

}  // namespace presso

// The serving compatibility table: one rule set per quant_method, from the loaders' source
// (files and commits in docs/formats.md, "Serving engines").
#include "lib/export/serving.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/model/model.h"

namespace presso {
namespace {

using nlohmann::json;

// vLLM marlin_utils.py MARLIN_SUPPORTED_GROUP_SIZES (-1: per channel).
bool marlin_group_size(int64_t group_size) {
  return group_size == -1 || group_size == 32 || group_size == 64 || group_size == 128;
}

int64_t int_of(const json& q, std::initializer_list<const char*> keys, int64_t fallback) {
  for (const char* key : keys) {
    auto it = q.find(key);
    if (it != q.end() && it->is_number_integer()) return it->get<int64_t>();
  }
  return fallback;
}

std::string string_of(const json& q, std::initializer_list<const char*> keys,
                      const std::string& fallback) {
  for (const char* key : keys) {
    auto it = q.find(key);
    if (it != q.end() && it->is_string()) return it->get<std::string>();
  }
  return fallback;
}

bool bool_of(const json& q, const char* key, bool fallback) {
  auto it = q.find(key);
  return it != q.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string group_text(int64_t group_size) {
  return group_size == -1 ? std::string("per channel") : fmt::format("group {}", group_size);
}

EngineVerdict fast(const std::string& engine, const std::string& kernel, const std::string& why) {
  return {engine, ServingSupport::kFast, kernel, why};
}
EngineVerdict runs(const std::string& engine, const std::string& kernel, const std::string& why) {
  return {engine, ServingSupport::kRuns, kernel, why};
}
EngineVerdict refuses(const std::string& engine, const std::string& why) {
  return {engine, ServingSupport::kRefuses, "", why};
}

// vLLM's plain gptq and awq methods: get_supported_act_dtypes() is [torch.half].
std::optional<EngineVerdict> fp16_only(const std::string& method, const std::string& dtype) {
  if (dtype == "float16") return std::nullopt;
  return refuses("vLLM", fmt::format("its plain {} kernel takes float16 activations only and "
                                     "config.json's dtype is {} (vLLM refuses to start without "
                                     "--dtype float16)",
                                     method, dtype.empty() ? "unstated" : dtype));
}

// --- GPTQ: vLLM gptq_marlin.py / gptq.py, GPTQModel models/loader.py.

void gptq_rules(const json& q, const std::string& dtype, ServingVerdict& v) {
  const int64_t bits = int_of(q, {"bits"}, 4), group_size = int_of(q, {"group_size"}, -1);
  const bool sym = bool_of(q, "sym", true), desc_act = bool_of(q, "desc_act", false);
  const std::string format = string_of(q, {"checkpoint_format", "format"}, "gptq");
  v.summary = fmt::format("gptq {}-bit {} {}{} ({}), dtype {}", bits,
                          sym ? "symmetric" : "asymmetric", group_text(group_size),
                          desc_act ? " desc_act" : "", format, dtype.empty() ? "unstated" : dtype);
  if ((bits == 4 || bits == 8) && sym && marlin_group_size(group_size)) {
    v.engines.push_back(fast("vLLM", "gptq_marlin (Marlin / Machete)",
                             "symmetric 4/8-bit (GPTQMarlinConfig.TYPE_MAP), a Marlin group size"));
  } else if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
    v.engines.push_back(refuses("vLLM", fmt::format("GPTQ stores 2/3/4/8 bits, not {}", bits)));
  } else if (auto refused = fp16_only("gptq", dtype)) {
    v.engines.push_back(*refused);
  } else {
    const std::string not_marlin =
        !sym ? "gptq_marlin takes symmetric 4/8-bit only (GPTQMarlinConfig.TYPE_MAP)"
             : fmt::format("gptq_marlin takes 4/8 bits and group sizes -1/32/64/128, not {} bits "
                           "{}",
                           bits, group_text(group_size));
    v.engines.push_back(runs("vLLM", bits == 4 ? "gptq (exllama)" : "gptq (gptq_gemm)",
                             not_marlin + (format == "gptq_v2" ? "; read with use_v2_format" : "")));
  }
  // GPTQModel refuses sym=false v1 unless meta.quantizer names gptqmodel >= 0.9.0; transformers
  // 5 loads GPTQ through GPTQModel.
  const std::string engine = "GPTQModel / transformers";
  bool by_gptqmodel = false;
  if (auto meta = q.find("meta"); meta != q.end() && meta->is_object()) {
    if (auto quantizer = meta->find("quantizer"); quantizer != meta->end() && quantizer->is_array())
      for (const auto& entry : *quantizer)
        by_gptqmodel = by_gptqmodel || (entry.is_string() && entry.get<std::string>().rfind(
                                                                  "gptqmodel:", 0) == 0);
  }
  if (format == "gptq" && !sym && !by_gptqmodel) {
    v.engines.push_back(refuses(
        engine, "sym=false in format gptq (v1) loads only when meta.quantizer names gptqmodel "
                ">= 0.9.0 (use checkpoint_format gptq_v2)"));
  } else if (format == "gptq" || format == "gptq_v2") {
    v.engines.push_back(runs(engine, "its own kernel choice", "format " + format));
  } else {
    v.engines.push_back(refuses(engine, "checkpoint_format '" + format + "' is not presso's"));
  }
}

// --- AWQ: vLLM awq_marlin.py / awq.py, AutoAWQ gemm.py.

void awq_rules(const json& q, const std::string& dtype, ServingVerdict& v) {
  const int64_t bits = int_of(q, {"bits", "w_bit"}, 4);
  const int64_t group_size = int_of(q, {"group_size", "q_group_size"}, 128);
  const bool zero_point = bool_of(q, "zero_point", true);
  std::string version = string_of(q, {"version"}, "gemm");
  std::transform(version.begin(), version.end(), version.begin(), ::tolower);
  v.summary = fmt::format("awq {}-bit {}, zero_point {}, version {}, dtype {}", bits,
                          group_text(group_size), zero_point ? "true" : "false", version,
                          dtype.empty() ? "unstated" : dtype);
  if (bits == 4 && zero_point && marlin_group_size(group_size)) {
    v.engines.push_back(fast("vLLM", "awq_marlin (Marlin)",
                             "uint4 with zero points, a Marlin group size (AWQMarlinConfig)"));
  } else if (bits != 4) {
    v.engines.push_back(refuses("vLLM", fmt::format("AWQ is 4-bit only, not {}", bits)));
  } else if (group_size == -1) {
    v.engines.push_back(refuses("vLLM", "awq_marlin needs zero points, and plain awq cannot "
                                        "load per-channel scales"));
  } else if (auto refused = fp16_only("awq", dtype)) {
    v.engines.push_back(*refused);
  } else {
    v.engines.push_back(runs("vLLM", "awq (GEMM)",
                             zero_point ? "not a Marlin group size"
                                        : "awq_marlin has no uint4 kernel without zero points "
                                          "(write zero_point true with zeros of 8)"));
  }
  if (bits == 4 && version == "gemm") {
    v.engines.push_back(runs("AutoAWQ / transformers", "WQLinear_GEMM", "version gemm, 4-bit"));
  } else {
    v.engines.push_back(
        refuses("AutoAWQ / transformers", "version " + version + " at " + std::to_string(bits)));
  }
}

// --- compressed-tensors: vLLM compressed_tensors.py / compressed_tensors_wNa16.py,
// compressed-tensors 0.18 quant_args.py.

void compressed_tensors_rules(const json& q, const std::string& dtype, ServingVerdict& v) {
  std::vector<std::string> schemes;
  EngineVerdict vllm = fast("vLLM", "CompressedTensorsWNA16 (Marlin / Machete)",
                            "4/8-bit, with zero points only at 4 and 8 bits");
  auto downgrade = [&vllm](const EngineVerdict& worse) {
    if (static_cast<int>(worse.support) > static_cast<int>(vllm.support)) vllm = worse;
  };
  bool dense_groups_only = true;
  if (auto groups = q.find("config_groups"); groups != q.end() && groups->is_object()) {
    for (const auto& [name, group] : groups->items()) {
      if (!group.is_object()) continue;
      const std::string format = string_of(group, {"format"}, string_of(q, {"format"}, ""));
      const json weights = group.value("weights", json::object());
      const int64_t bits = int_of(weights, {"num_bits"}, 8);
      const bool sym = bool_of(weights, "symmetric", true);
      const int64_t group_size =
          weights.contains("group_size") && weights["group_size"].is_number_integer()
              ? weights["group_size"].get<int64_t>()
              : -1;
      const std::string actorder = string_of(weights, {"actorder"}, "");
      schemes.push_back(fmt::format("{} {}-bit {} {}{} ({})", name, bits,
                                    sym ? "symmetric" : "asymmetric", group_text(group_size),
                                    actorder.empty() ? "" : " actorder " + actorder, format));
      if (format == "dense") continue;
      dense_groups_only = false;
      if (format != "pack-quantized") {
        downgrade(refuses("vLLM", "format '" + format + "' is not in presso's table"));
      } else if (!sym && bits != 4 && bits != 8) {
        downgrade(refuses("vLLM", fmt::format("{}: zero points only at 4 and 8 bits "
                                              "(WNA16_ZP_SUPPORTED_TYPES_MAP), not {}",
                                              name, bits)));
      } else if (bits != 4 && bits != 8) {
        downgrade(refuses("vLLM", fmt::format("{}: wNa16 takes 4 and 8 bits "
                                              "(WNA16_SUPPORTED_TYPES_MAP), not {}",
                                              name, bits)));
      } else if (!marlin_group_size(group_size)) {
        downgrade(runs("vLLM", "CompressedTensorsWNA16 (a non-Marlin kernel)",
                       fmt::format("{}: {} is not a Marlin group size", name,
                                   group_text(group_size))));
      }
      if (actorder == "group" || actorder == "dynamic") {
        v.notes.push_back(fmt::format(
            "{}: actorder '{}' is deprecated in compressed-tensors 0.18 (quant_args.py "
            "validate_actorder) and may leave vLLM; actorder 'weight' (gptq `static_groups: "
            "true`) stores no g_idx",
            name, actorder));
      }
    }
  }
  bool sparsity_targets = false;
  std::string sparse_format;
  if (auto s = q.find("sparsity_config"); s != q.end() && s->is_object() && !s->empty()) {
    sparse_format = string_of(*s, {"format"}, "dense");
    auto targets = s->find("targets");
    sparsity_targets = targets != s->end() && targets->is_array() && !targets->empty();
  }
  if (sparsity_targets) {
    downgrade(refuses("vLLM", "a sparsity_config with targets (refused since vLLM PRs "
                              "42889/43144, May 2026)"));
  }
  if (dense_groups_only && !sparsity_targets) vllm = runs("vLLM", "dense", "nothing is packed");
  v.summary = fmt::format("compressed-tensors {}{}, dtype {}",
                          schemes.empty() ? "with no config groups" : fmt::format("{}", fmt::join(schemes, "; ")),
                          sparse_format.empty() ? "" : ", sparsity_config " + sparse_format,
                          dtype.empty() ? "unstated" : dtype);
  v.engines.push_back(vllm);
  if (sparse_format == "sparse-24-bitmask") {
    v.engines.push_back(refuses("transformers", "compressed-tensors dropped sparse-24-bitmask "
                                                "in 0.15.0"));
  } else {
    v.engines.push_back(runs("transformers", "decompressed to dense weights",
                             "compressed-tensors 0.18 decompresses pack-quantized on load"));
  }
}

struct MethodRules {
  const char* quant_method;
  void (*rules)(const json& q, const std::string& dtype, ServingVerdict& verdict);
};

const MethodRules kRules[] = {
    {"compressed-tensors", compressed_tensors_rules},
    {"gptq", gptq_rules},
    {"awq", awq_rules},
};

const char* support_word(ServingSupport support) {
  switch (support) {
    case ServingSupport::kFast:
      return "fast kernel";
    case ServingSupport::kRuns:
      return "runs";
    case ServingSupport::kRefuses:
      return "refuses";
  }
  return "";
}

}  // namespace

bool ServingVerdict::fast() const {
  if (!quantized()) return true;
  return std::any_of(engines.begin(), engines.end(),
                     [](const EngineVerdict& e) { return e.support == ServingSupport::kFast; });
}

ServingVerdict serving_verdict(const json& config, const std::string& config_path) {
  ServingVerdict verdict;
  const std::string dtype = config.is_object() ? string_of(config, {"dtype", "torch_dtype"}, "")
                                               : std::string();
  auto q = config.is_object() ? config.find("quantization_config") : config.end();
  if (!config.is_object() || q == config.end() || q->is_null()) {
    verdict.summary = fmt::format("no quantization_config (dtype {}): every engine loads it as a "
                                  "plain checkpoint",
                                  dtype.empty() ? "unstated" : dtype);
    return verdict;
  }
  if (!q->is_object()) fail_user("{}: key 'quantization_config' is not an object", config_path);
  verdict.method = string_of(*q, {"quant_method"}, "unstated");
  for (const auto& rules : kRules) {
    if (verdict.method != rules.quant_method) continue;
    rules.rules(*q, dtype, verdict);
    return verdict;
  }
  verdict.summary = "quant_method '" + verdict.method + "' is not in presso's serving table";
  return verdict;
}

ServingVerdict serving_verdict_of_dir(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  if (!std::filesystem::is_regular_file(path)) fail_user("{}: no such file", path);
  return serving_verdict(parse_json_input(read_file_bytes(path), path), path);
}

ServingVerdict plan_serving_verdict(OutputFormat format, const Model& model,
                                    const std::vector<LinearPlan>& stored) {
  const OutputFormatSpec& spec = format_spec(format);
  json config = json::object();
  const std::string dtype = spec.model_dtype ? std::string(spec.model_dtype == torch::kFloat16
                                                               ? "float16"
                                                               : "bfloat16")
                                             : model.config().dtype;
  if (!dtype.empty()) config["dtype"] = dtype;
  if (auto q = spec.quantization_config({model, stored, 0.0})) config["quantization_config"] = *q;
  return serving_verdict(config, model.config().path);
}

std::vector<std::string> fast_formats(const Model& model, const std::vector<LinearPlan>& stored) {
  std::vector<std::string> names;
  for (const auto& spec : output_formats()) {
    if (spec.bits.empty() || !checkpoint_problems(spec.id, model, stored).empty()) continue;
    const ServingVerdict verdict = plan_serving_verdict(spec.id, model, stored);
    if (verdict.quantized() && verdict.fast()) names.push_back(spec.name);
  }
  return names;
}

std::string verdict_text(const ServingVerdict& verdict) {
  std::string text = "serving: " + verdict.summary + "\n";
  for (const auto& e : verdict.engines) {
    text += fmt::format("  {}: {}{}{}\n", e.engine, support_word(e.support),
                        e.kernel.empty() ? "" : " (" + e.kernel + ")",
                        e.why.empty() ? "" : ": " + e.why);
  }
  for (const auto& note : verdict.notes) text += "  note: " + note + "\n";
  if (verdict.quantized() && !verdict.fast() && !verdict.engines.empty()) {
    text += "  none of the fast kernels (vLLM's Marlin / Machete) will run it\n";
  }
  return text;
}

std::string plan_serving_report(OutputFormat format, const Model& model,
                                const std::vector<LinearPlan>& stored, bool strict) {
  const ServingVerdict verdict = plan_serving_verdict(format, model, stored);
  std::string text = verdict_text(verdict);
  if (verdict.fast()) return text;
  const std::vector<std::string> better = fast_formats(model, stored);
  const std::string advice =
      better.empty() ? std::string("no packed format runs these schemes on a fast kernel; a "
                                   "4- or 8-bit scheme would")
                     : fmt::format("--format {} would run it on a fast kernel",
                                   fmt::join(better, " or --format "));
  if (strict) {
    text.pop_back();  // the message ends without a newline
    fail_user("--strict-serving: the {} checkpoint of this plan runs on none of the fast kernels; "
              "{}\n{}",
              output_format_name(format), advice, text);
  }
  return text + "  " + advice + "\n";
}

}  // namespace presso

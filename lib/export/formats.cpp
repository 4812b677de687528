// The output formats table, and the checks that read it.
#include "lib/export/formats.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "lib/common/errors.h"
#include "lib/export/quantization_config.h"
#include "lib/io/safetensors.h"
#include "lib/model/model.h"
#include "lib/quant/pack_awq.h"
#include "lib/quant/pack_compressed_tensors.h"
#include "lib/quant/pack_gptq.h"

namespace presso {
namespace {

// --- Grids: scales stored exactly in the format's dtype.

// weight_scale is stored in the weight's dtype (compressed-tensors keeps the module's parameter
// dtype); the dense export multiplies in that dtype's precision anyway.
GridOptions grid_in_weight_dtype(torch::ScalarType weight_dtype) {
  GridOptions options;
  options.scale_dtype = weight_dtype;
  return options;
}

GridOptions gptq_grid(torch::ScalarType) {
  GridOptions options;
  options.scale_dtype = torch::kFloat16;
  options.avoid_qmin_zero_point = true;  // v1 stores zero − 1 (pack_gptq.h)
  return options;
}

GridOptions awq_grid(torch::ScalarType) {
  GridOptions options;
  options.scale_dtype = torch::kFloat16;
  return options;
}

// --- Layout rules of one linear.

std::vector<std::string> no_layout_rules(const LinearPlan&) { return {}; }

std::vector<std::string> gptq_layout(const LinearPlan& linear) {
  std::vector<std::string> problems;
  const int bits = linear.scheme->bits;
  if (linear.in_features * bits % 32 != 0) {
    problems.push_back(fmt::format(
        "'{}': {} input columns × {} bits is not a whole number of 32-bit words (qweight "
        "packs along the input dimension)",
        linear.name, linear.in_features, bits));
  }
  if (linear.out_features * bits % 32 != 0) {
    problems.push_back(
        fmt::format("'{}': {} output rows × {} bits is not a whole number of 32-bit words (qzeros "
                    "packs along the output dimension)",
                    linear.name, linear.out_features, bits));
  }
  return problems;
}

// --- Writers of a quantized linear.

void write_compressed_tensors(SafetensorsWriter& out, const Linear& linear,
                              const QuantizedWeight& weight, torch::ScalarType dtype) {
  // Scales in the weight's dtype (the format's grid made them exact in it).
  CompressedTensorsPacked packed = pack_compressed_tensors(weight, dtype, linear.name);
  const std::string& name = linear.name;
  out.add(name + ".weight_packed", packed.weight_packed);
  out.add(name + ".weight_scale", packed.weight_scale);
  if (packed.weight_zero_point) out.add(name + ".weight_zero_point", *packed.weight_zero_point);
  out.add(name + ".weight_shape", packed.weight_shape);
  if (packed.weight_g_idx) out.add(name + ".weight_g_idx", *packed.weight_g_idx);
}

void write_gptq(SafetensorsWriter& out, const Linear& linear, const QuantizedWeight& weight,
                torch::ScalarType) {
  // Asymmetric schemes go as v2, which GPTQModel loads (it refuses foreign asymmetric v1).
  GptqPacked packed = std::string(gptq_checkpoint_format(weight.scheme)) == "gptq_v2"
                          ? pack_gptq_v2(weight, linear.name)
                          : pack_gptq_v1(weight, linear.name);
  out.add(linear.name + ".qweight", packed.qweight);
  out.add(linear.name + ".qzeros", packed.qzeros);
  out.add(linear.name + ".scales", packed.scales);
  out.add(linear.name + ".g_idx", packed.g_idx);
}

void write_awq(SafetensorsWriter& out, const Linear& linear, const QuantizedWeight& weight,
               torch::ScalarType) {
  AwqPacked packed = pack_awq_gemm(weight, linear.name);
  out.add(linear.name + ".qweight", packed.qweight);
  out.add(linear.name + ".qzeros", packed.qzeros);
  out.add(linear.name + ".scales", packed.scales);
}

void write_dense(SafetensorsWriter& out, const Linear& linear, const QuantizedWeight& weight,
                 torch::ScalarType dtype) {
  // W: [out, in]; GPT-2's Conv1D keeps [in, out] on disk.
  torch::Tensor dense = dequantize(weight).to(dtype);
  if (linear.stored_transposed) dense = dense.t().contiguous();
  out.add(linear.name + ".weight", dense);
}

// --- quantization_config builders.

std::vector<LinearPlan> quantized_only(const std::vector<LinearPlan>& stored) {
  std::vector<LinearPlan> quantized;
  for (const auto& linear : stored)
    if (linear.scheme) quantized.push_back(linear);
  return quantized;
}

// Every linear module of the model that `stored` does not quantize.
std::vector<std::string> unquantized_linears(const Model& model,
                                             const std::vector<LinearPlan>& quantized) {
  std::set<std::string> done;
  for (const auto& linear : quantized) done.insert(linear.name);
  std::vector<std::string> names;
  for (const auto& linear : model.linears())
    if (!done.count(linear.name)) names.push_back(linear.name);
  return names;
}

std::optional<nlohmann::json> compressed_tensors_quantization(const FormatConfigInput& input) {
  const std::vector<LinearPlan> quantized = quantized_only(input.stored);
  std::optional<nlohmann::json> sparsity =
      compressed_tensors_sparsity(input.model, input.stored, input.global_sparsity);
  // compressed-tensors writes no config for a model it neither quantized nor sparsified.
  if (quantized.empty() && !sparsity) return std::nullopt;
  return compressed_tensors_config(quantized, unquantized_linears(input.model, quantized),
                                   sparsity);
}

std::optional<nlohmann::json> gptq_quantization(const FormatConfigInput& input) {
  return gptq_config(quantized_only(input.stored));
}

std::optional<nlohmann::json> awq_quantization(const FormatConfigInput& input) {
  const std::vector<LinearPlan> quantized = quantized_only(input.stored);
  // lm_head is never converted by AutoAWQ, transformers or vLLM's awq; list the rest.
  std::vector<std::string> not_converted;
  for (const auto& name : unquantized_linears(input.model, quantized))
    if (name != input.model.family().lm_head) not_converted.push_back(name);
  return awq_config(quantized, not_converted);
}

std::optional<nlohmann::json> no_quantization(const FormatConfigInput&) { return std::nullopt; }

const std::vector<int> kAllWidths = {2, 3, 4, 5, 6, 7, 8};

std::vector<OutputFormatSpec> make_table() {
  OutputFormatSpec ct;
  ct.id = OutputFormat::kCompressedTensors;
  ct.name = "compressed-tensors";
  ct.summary = "pack-quantized int2-8, a config group per scheme, sparsity_config (vLLM's format)";
  ct.bits = kAllWidths;
  ct.g_idx = true;
  ct.scheme_per_linear = true;
  ct.sparsity_metadata = true;
  ct.sparse_24_compressed = true;
  ct.grid = grid_in_weight_dtype;
  ct.layout_problems = no_layout_rules;
  ct.write_quantized = write_compressed_tensors;
  ct.quantization_config = compressed_tensors_quantization;
  ct.read_back = PackedMethod::kCompressedTensors;

  OutputFormatSpec gptq;
  gptq.id = OutputFormat::kGptq;
  gptq.name = "gptq";
  gptq.summary =
      "GPTQ qweight/qzeros/scales/g_idx (v1 sym, v2 asym), int2/3/4/8, one scheme, every block "
      "linear, float16";
  gptq.bits = {2, 3, 4, 8};
  gptq.g_idx = true;
  gptq.leaves_block_linears = false;
  gptq.needs_quantization = true;
  gptq.model_dtype = torch::kFloat16;
  gptq.grid = gptq_grid;
  gptq.layout_problems = gptq_layout;
  gptq.write_quantized = write_gptq;
  gptq.quantization_config = gptq_quantization;
  gptq.read_back = PackedMethod::kGptq;

  OutputFormatSpec awq;
  awq.id = OutputFormat::kAwq;
  awq.name = "awq";
  awq.summary = "AutoAWQ GEMM, int4, one scheme, zero points always, float16";
  awq.bits = {4};
  awq.needs_quantization = true;
  awq.model_dtype = torch::kFloat16;
  awq.grid = awq_grid;
  awq.rows_multiple = 8;
  awq.layout_problems = no_layout_rules;
  awq.write_quantized = write_awq;
  awq.quantization_config = awq_quantization;
  awq.read_back = PackedMethod::kAwq;

  OutputFormatSpec dense;
  dense.id = OutputFormat::kDense;
  dense.name = "dense";
  dense.summary = "dequantized weights in the checkpoint's dtype, no quantization_config";
  dense.g_idx = true;
  dense.scheme_per_linear = true;
  dense.grid = grid_in_weight_dtype;
  dense.layout_problems = no_layout_rules;
  dense.write_quantized = write_dense;
  dense.quantization_config = no_quantization;
  dense.read_back = PackedMethod::kNone;
  return {ct, gptq, awq, dense};
}

std::string describe_scheme(const QuantScheme& scheme) {
  return fmt::format("{}-bit {} {}", scheme.bits,
                     scheme.group_size == -1 ? std::string("per channel")
                                             : fmt::format("group {}", scheme.group_size),
                     scheme.symmetric ? "symmetric" : "asymmetric");
}

// One line when a format holding one scheme for the whole model is given several.
void single_scheme_problem(const OutputFormatSpec& format, const std::vector<LinearPlan>& linears,
                           std::vector<std::string>& problems) {
  std::map<std::tuple<int, int, bool>, std::vector<std::string>> by_scheme;
  for (const auto& linear : linears) {
    if (!linear.scheme) continue;
    const QuantScheme& s = *linear.scheme;
    by_scheme[{s.bits, s.group_size, s.symmetric}].push_back(linear.name);
  }
  if (by_scheme.size() <= 1) return;
  std::vector<std::string> parts;
  for (const auto& [key, names] : by_scheme) {
    const QuantScheme scheme{std::get<0>(key), std::get<1>(key), std::get<2>(key)};
    parts.push_back(fmt::format("{} ({} linear{}, e.g. {})", describe_scheme(scheme), names.size(),
                                names.size() == 1 ? "" : "s", names.front()));
  }
  problems.push_back(fmt::format(
      "{}'s quantization_config holds one scheme for the whole model, but the plan has {}: {} "
      "(use one scheme, or the compressed-tensors format, which stores one config group per "
      "scheme)",
      format.name, by_scheme.size(), fmt::join(parts, "; ")));
}

// What one quantized linear asks of the row's abilities.
void scheme_problems(const OutputFormatSpec& format, const LinearPlan& linear,
                     std::vector<std::string>& problems) {
  const QuantScheme& scheme = *linear.scheme;
  const bool width_ok = format.bits.empty() || std::find(format.bits.begin(), format.bits.end(),
                                                         scheme.bits) != format.bits.end();
  if (!width_ok) {
    problems.push_back(fmt::format("'{}': {} stores {} bits, not {}", linear.name, format.name,
                                   fmt::join(format.bits, ", "), scheme.bits));
  }
  if (linear.out_features % format.rows_multiple != 0) {
    problems.push_back(fmt::format(
        "'{}': {} output rows is not a multiple of {} ({} packs {} "
        "output columns per word)",
        linear.name, linear.out_features, format.rows_multiple, format.name, format.rows_multiple));
  }
  if (!scheme.symmetric && !format.asymmetric) {
    problems.push_back(fmt::format("'{}': {} has no zero points (use a symmetric scheme)",
                                   linear.name, format.name));
  }
  if (scheme.group_size == -1 && !format.per_channel) {
    problems.push_back(fmt::format("'{}': {} needs a group size (no per-channel scales)",
                                   linear.name, format.name));
  }
  if (linear.g_idx && !format.g_idx) {
    problems.push_back(
        fmt::format("'{}': {} has no g_idx, so act-order with saved group indices cannot be stored "
                    "(gptq: drop `static_groups: false` for static act-order, which stores none; "
                    "llm-compressor: actorder 'static'/'weight'; or another format)",
                    linear.name, format.name));
  }
  // QuantizationArgs rejects actorder "group" without the group strategy (quant_args.py).
  if (linear.g_idx && scheme.group_size == -1 && format.id == OutputFormat::kCompressedTensors) {
    problems.push_back(fmt::format(
        "'{}': a saved g_idx (act-order 'group') needs a group size; compressed-tensors "
        "does not allow it with per-channel scales",
        linear.name));
  }
  if (!width_ok) return;  // the layout rules assume a storable width
  for (auto& problem : format.layout_problems(linear)) problems.push_back(std::move(problem));
}

}  // namespace

const std::vector<OutputFormatSpec>& output_formats() {
  static const std::vector<OutputFormatSpec> table = make_table();
  return table;
}

const OutputFormatSpec& format_spec(OutputFormat format) {
  for (const auto& spec : output_formats())
    if (spec.id == format) return spec;
  fail_internal("output format {} is not in the table", static_cast<int>(format));
}

OutputFormat output_format_from_name(const std::string& name) {
  for (const auto& spec : output_formats())
    if (name == spec.name) return spec.id;
  fail_user("unknown output format '{}' (valid: {})", name, fmt::join(output_format_names(), ", "));
}

const char* output_format_name(OutputFormat format) { return format_spec(format).name; }

std::vector<std::string> output_format_names() {
  std::vector<std::string> names;
  for (const auto& spec : output_formats()) names.push_back(spec.name);
  return names;
}

GridOptions format_grid_options(OutputFormat format, torch::ScalarType weight_dtype) {
  return format_spec(format).grid(weight_dtype);
}

std::vector<std::string> format_problems(OutputFormat format,
                                         const std::vector<LinearPlan>& linears) {
  const OutputFormatSpec& spec = format_spec(format);
  std::vector<std::string> problems;
  for (const auto& linear : linears) {
    if (linear.scheme) scheme_problems(spec, linear, problems);
  }
  if (!spec.scheme_per_linear) single_scheme_problem(spec, linears, problems);
  return problems;
}

std::vector<std::string> checkpoint_problems(OutputFormat format, const Model& model,
                                             const std::vector<LinearPlan>& linears) {
  const OutputFormatSpec& spec = format_spec(format);
  std::vector<std::string> problems = format_problems(format, linears);
  std::set<std::string> quantized;
  for (const auto& linear : linears)
    if (linear.scheme) quantized.insert(linear.name);
  if (spec.needs_quantization && quantized.empty()) {
    problems.push_back(fmt::format(
        "nothing is quantized, and a {} checkpoint needs a quantization scheme (use --format "
        "dense or compressed-tensors)",
        spec.name));
    return problems;
  }
  if (!spec.leaves_block_linears) {
    std::vector<std::string> left;
    for (const auto& linear : model.linears())
      if (linear.block >= 0 && !quantized.count(linear.name)) left.push_back(linear.name);
    if (!left.empty()) {
      problems.push_back(fmt::format(
          "{} linear{} in the decoder blocks would stay unquantized ({}), which a {} "
          "checkpoint cannot say: its loaders quantize every linear of the blocks; quantize them "
          "too, or use the default format compressed-tensors, which lists them in `ignore`",
          left.size(), left.size() == 1 ? "" : "s", fmt::join(left, ", "), spec.name));
    }
  }
  return problems;
}

}  // namespace presso

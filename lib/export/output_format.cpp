// Output format names, the grid each format needs, and what each format cannot store.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <set>
#include <tuple>

#include "lib/common/errors.h"
#include "lib/export/checkpoint_writer.h"
#include "lib/export/quantization_config.h"
#include "lib/model/model.h"

namespace presso {
namespace {

struct FormatName {
  OutputFormat format;
  const char* name;
};

constexpr FormatName kFormatNames[] = {
    {OutputFormat::kCompressedTensors, "compressed-tensors"},
    {OutputFormat::kGptq, "gptq"},
    {OutputFormat::kAwq, "awq"},
    {OutputFormat::kDense, "dense"},
};

std::string describe_scheme(const QuantScheme& scheme) {
  return fmt::format("{}-bit {} {}", scheme.bits,
                     scheme.group_size == -1 ? std::string("per channel")
                                             : fmt::format("group {}", scheme.group_size),
                     scheme.symmetric ? "symmetric" : "asymmetric");
}

// One line when the plan holds more than one (bits, group_size, symmetric): GPTQ's and AWQ's
// quantization_config hold a single scheme for the whole model.
void single_scheme_problem(const char* format, const std::vector<PlannedQuantLinear>& linears,
                           std::vector<std::string>& problems) {
  std::map<std::tuple<int, int, bool>, std::vector<std::string>> by_scheme;
  for (const auto& linear : linears) {
    by_scheme[{linear.scheme.bits, linear.scheme.group_size, linear.scheme.symmetric}].push_back(
        linear.name);
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
      format, by_scheme.size(), fmt::join(parts, "; ")));
}

}  // namespace

OutputFormat output_format_from_name(const std::string& name) {
  for (const auto& entry : kFormatNames)
    if (name == entry.name) return entry.format;
  fail_user("unknown output format '{}' (valid: {})", name, fmt::join(output_format_names(), ", "));
}

const char* output_format_name(OutputFormat format) {
  for (const auto& entry : kFormatNames)
    if (entry.format == format) return entry.name;
  return "?";
}

std::vector<std::string> output_format_names() {
  std::vector<std::string> names;
  for (const auto& entry : kFormatNames) names.push_back(entry.name);
  return names;
}

GridOptions format_grid_options(OutputFormat format, torch::ScalarType weight_dtype) {
  GridOptions options;
  switch (format) {
    case OutputFormat::kCompressedTensors:
    case OutputFormat::kDense:
      // weight_scale is stored in the weight's dtype (compressed-tensors keeps the module's
      // parameter dtype); the dense export multiplies in that dtype's precision anyway.
      options.scale_dtype = weight_dtype;
      break;
    case OutputFormat::kGptq:
      options.scale_dtype = torch::kFloat16;
      options.avoid_qmin_zero_point = true;  // v1 stores zero − 1 (pack_gptq.h)
      break;
    case OutputFormat::kAwq:
      options.scale_dtype = torch::kFloat16;
      break;
  }
  return options;
}

std::vector<std::string> format_problems(OutputFormat format,
                                         const std::vector<PlannedQuantLinear>& linears) {
  std::vector<std::string> problems;
  switch (format) {
    case OutputFormat::kDense:
      break;
    case OutputFormat::kCompressedTensors:
      for (const auto& linear : linears) {
        // QuantizationArgs rejects actorder "group" without the group strategy (quant_args.py).
        if (linear.g_idx && linear.scheme.group_size == -1) {
          problems.push_back(fmt::format(
              "'{}': a saved g_idx (act-order 'group') needs a group size; compressed-tensors "
              "does not allow it with per-channel scales",
              linear.name));
        }
      }
      break;
    case OutputFormat::kGptq:
      for (const auto& linear : linears) {
        const int bits = linear.scheme.bits;
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
          problems.push_back(
              fmt::format("'{}': gptq stores 2, 3, 4 or 8 bits, not {}", linear.name, bits));
          continue;
        }
        if (linear.in_features * bits % 32 != 0) {
          problems.push_back(fmt::format(
              "'{}': {} input columns × {} bits is not a whole number of 32-bit words (qweight "
              "packs along the input dimension)",
              linear.name, linear.in_features, bits));
        }
        if (linear.out_features * bits % 32 != 0) {
          problems.push_back(fmt::format(
              "'{}': {} output rows × {} bits is not a whole number of 32-bit words (qzeros "
              "packs along the output dimension)",
              linear.name, linear.out_features, bits));
        }
      }
      single_scheme_problem("gptq", linears, problems);
      break;
    case OutputFormat::kAwq:
      for (const auto& linear : linears) {
        if (linear.scheme.bits != 4) {
          problems.push_back(fmt::format("'{}': awq (GEMM) stores 4 bits only, not {}", linear.name,
                                         linear.scheme.bits));
        }
        if (linear.out_features % 8 != 0) {
          problems.push_back(fmt::format(
              "'{}': {} output rows is not a multiple of 8 (awq packs 8 output columns per word)",
              linear.name, linear.out_features));
        }
        if (linear.g_idx) {
          problems.push_back(fmt::format(
              "'{}': awq has no g_idx, so act-order with saved group indices cannot be stored "
              "(use act-order 'static'/'weight', or another format)",
              linear.name));
        }
      }
      single_scheme_problem("awq", linears, problems);
      break;
  }
  return problems;
}

std::vector<std::string> checkpoint_problems(OutputFormat format, const Model& model,
                                             const std::vector<PlannedQuantLinear>& linears) {
  std::vector<std::string> problems = format_problems(format, linears);
  if (format != OutputFormat::kGptq && format != OutputFormat::kAwq) return problems;
  if (linears.empty()) {
    problems.push_back(fmt::format(
        "nothing is quantized, and a {} checkpoint needs a quantization scheme (use --format "
        "dense or compressed-tensors)",
        output_format_name(format)));
    return problems;
  }
  if (format == OutputFormat::kGptq) {
    std::set<std::string> quantized;
    for (const auto& linear : linears) quantized.insert(linear.name);
    std::vector<std::string> left;
    for (const auto& name : block_linear_names(model))
      if (!quantized.count(name)) left.push_back(name);
    if (!left.empty()) {
      problems.push_back(fmt::format(
          "{} linear{} in the decoder blocks would stay unquantized ({}), which a gptq "
          "checkpoint cannot say: its loaders quantize every linear of the blocks; quantize them "
          "too, or use the default format compressed-tensors, which lists them in `ignore`",
          left.size(), left.size() == 1 ? "" : "s", fmt::join(left, ", ")));
    }
  }
  return problems;
}

}  // namespace presso

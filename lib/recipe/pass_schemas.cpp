#include "lib/recipe/pass_schemas.h"

#include <fmt/format.h>

#include <regex>

#include "lib/recipe/targets.h"

namespace presso {
namespace {

std::string check_patterns(const OptionValue& value) {
  for (const auto& pattern : std::get<std::vector<std::string>>(value)) {
    std::string problem = check_target_pattern(pattern);
    if (!problem.empty()) return problem;
  }
  return "";
}

PassSchema make_schema(std::string name, std::string summary, std::vector<OptionSpec> options,
                       std::vector<std::string> plan_keys) {
  PassSchema schema;
  schema.name = std::move(name);
  schema.summary = std::move(summary);
  schema.options = std::move(options);
  schema.plan_keys = std::move(plan_keys);
  return schema;
}

}  // namespace

std::vector<OptionSpec> target_options() {
  OptionSpec targets = string_list_option(
      "targets", {"Linear"},
      "linears to compress: names, dot-suffixes, re: regexes, or Linear (every block linear)");
  targets.check = check_patterns;
  OptionSpec ignore =
      string_list_option("ignore", {}, "linears to leave alone, same patterns; wins over targets");
  ignore.check = check_patterns;
  return {targets, ignore};
}

std::vector<OptionSpec> quant_options() {
  OptionSpec group_size = int_option("group_size", 128, -1, std::nullopt,
                                     "input columns sharing one scale; -1 = one per output row");
  group_size.check = [](const OptionValue& value) -> std::string {
    return std::get<int64_t>(value) == 0 ? "0 is not a group size (use -1 for one group per "
                                           "output row, or a size >= 1)"
                                         : "";
  };
  return {int_option("bits", 4, 2, 8, "bits per weight"), group_size,
          bool_option("symmetric", true, "zero point fixed at the middle of the grid"),
          bool_option("mse", false, "grid range from an MSE search instead of min/max")};
}

std::vector<std::string> check_quant_shape(const PassOptions& options, const LinearInfo& linear) {
  int64_t group_size = options.get_int("group_size");
  if (group_size > 0 && linear.in_features % group_size != 0) {
    return {fmt::format("group_size {} does not divide the {} input columns of {} [{}, {}]",
                        group_size, linear.in_features, linear.name, linear.out_features,
                        linear.in_features)};
  }
  return {};
}

std::vector<OptionSpec> obs_options() {
  return {float_option("damp", 0.01, 0.0, std::nullopt,
                       "fraction of mean(diag H) added to the Hessian diagonal"),
          int_option("block_size", 128, 1, std::nullopt, "columns per lazy-batch block")};
}

std::vector<OptionSpec> act_order_options() {
  return {bool_option("act_order", false, "visit columns by decreasing Hessian diagonal"),
          bool_option("static_groups", false,
                      "group grids fixed from the original weights before the sweep; with "
                      "act_order no g_idx is needed"),
          bool_option("true_sequential", true,
                      "quantize a block's linears in forward order, on quantized inputs")};
}

std::vector<OptionSpec> pruning_options() {
  OptionSpec sparsity;
  sparsity.key = "sparsity";
  sparsity.type = OptionType::kFloat;
  sparsity.min = 0.0;
  sparsity.max = 1.0;
  sparsity.doc = "fraction of weights set to zero (ignored with an N:M mask_structure)";
  sparsity.check = [](const OptionValue& value) -> std::string {
    return std::get<double>(value) >= 1.0 ? "1 would prune every weight; use a value below 1" : "";
  };
  OptionSpec mask = string_option("mask_structure", "0:0",
                                  "\"0:0\" unstructured, or \"N:M\": N zeros per M inputs");
  mask.check = [](const OptionValue& value) -> std::string {
    static const std::regex kForm("([0-9]{1,4}):([0-9]{1,4})");
    const auto& text = std::get<std::string>(value);
    std::smatch match;
    if (!std::regex_match(text, match, kForm)) {
      return fmt::format("'{}' is not of the form \"N:M\" (\"0:0\" = unstructured)", text);
    }
    int n = std::stoi(match[1]), m = std::stoi(match[2]);
    if ((n == 0) != (m == 0) || n > m) {
      return fmt::format("'{}' needs 0 < N <= M (or \"0:0\" for unstructured)", text);
    }
    return "";
  };
  return {sparsity, mask};
}

std::pair<int, int> parse_mask_structure(const std::string& text) {
  size_t colon = text.find(':');
  return {std::stoi(text.substr(0, colon)), std::stoi(text.substr(colon + 1))};
}

std::vector<OptionProblem> check_pruning(const PassOptions& options) {
  // SparsityModifierBase requires `sparsity` and ignores it for N:M masks
  // (src/llmcompressor/modifiers/pruning/sparsegpt/sgpt_base.py).
  if (parse_mask_structure(options.get_string("mask_structure")).first == 0 &&
      !options.has("sparsity")) {
    return {{"sparsity", "sparsity is required for an unstructured mask (mask_structure \"0:0\")"}};
  }
  return {};
}

std::vector<std::string> check_pruning_shape(const PassOptions& options, const LinearInfo& linear) {
  int m = parse_mask_structure(options.get_string("mask_structure")).second;
  if (m > 0 && linear.in_features % m != 0) {
    return {
        fmt::format("mask_structure {} needs the input width to be a multiple of {}, but {} "
                    "[{}, {}] has {} columns",
                    options.get_string("mask_structure"), m, linear.name, linear.out_features,
                    linear.in_features, linear.in_features)};
  }
  return {};
}

std::vector<OptionSpec> awq_options() {
  OptionSpec mappings;
  mappings.key = "mappings";
  mappings.type = OptionType::kMappingList;
  mappings.default_value = std::vector<LayerMapping>{};
  mappings.doc = "smooth_layer -> balance_layers pairs; [] uses the model family's";
  return {enum_option("duo_scaling", "true", {"true", "false", "both"},
                      "scales from activations and weights (true), activations only (false), "
                      "or search both"),
          int_option("n_grid", 20, 1, std::nullopt, "grid points of the scale search"),
          bool_option("clip", true, "search a clipping ratio per group after scaling"), mappings};
}

std::vector<OptionSpec> join_options(std::vector<std::vector<OptionSpec>> groups) {
  std::vector<OptionSpec> all;
  for (auto& group : groups) {
    for (auto& spec : group) all.push_back(std::move(spec));
  }
  return all;
}

PassSchema rtn_schema() {
  PassSchema schema = make_schema("rtn", "round-to-nearest weight quantization, no calibration",
                                  join_options({target_options(), quant_options()}),
                                  {"bits", "group_size", "symmetric"});
  schema.shape_check = check_quant_shape;
  return schema;
}

PassSchema gptq_schema() {
  PassSchema schema = make_schema(
      "gptq", "GPTQ: quantize columns in order, updating the rest from the inverse Hessian",
      join_options({target_options(), quant_options(), obs_options(), act_order_options()}),
      {"bits", "group_size", "symmetric", "act_order"});
  schema.shape_check = check_quant_shape;
  return schema;
}

PassSchema awq_schema() {
  PassSchema schema = make_schema(
      "awq", "AWQ: scale salient input channels before quantization, folding the inverse",
      join_options({target_options(), quant_options(), awq_options()}),
      {"bits", "group_size", "symmetric"});
  schema.shape_check = check_quant_shape;
  return schema;
}

PassSchema sparsegpt_schema() {
  PassSchema schema =
      make_schema("sparsegpt", "SparseGPT: prune by OBS saliency, updating the remaining weights",
                  join_options({target_options(), pruning_options(), obs_options()}),
                  {"sparsity", "mask_structure"});
  schema.cross_check = check_pruning;
  schema.shape_check = check_pruning_shape;
  return schema;
}

PassSchema wanda_schema() {
  PassSchema schema = make_schema("wanda", "Wanda: prune by |w| * ||x|| per output row",
                                  join_options({target_options(), pruning_options()}),
                                  {"sparsity", "mask_structure"});
  schema.cross_check = check_pruning;
  schema.shape_check = check_pruning_shape;
  return schema;
}

PassSchema magnitude_schema() {
  PassSchema schema = make_schema("magnitude", "magnitude pruning: zero the smallest |w|",
                                  join_options({target_options(), pruning_options()}),
                                  {"sparsity", "mask_structure"});
  schema.cross_check = check_pruning;
  schema.shape_check = check_pruning_shape;
  return schema;
}

std::vector<PassSchema> standard_schemas() {
  return {rtn_schema(),       gptq_schema(),  awq_schema(),
          sparsegpt_schema(), wanda_schema(), magnitude_schema()};
}

}  // namespace presso

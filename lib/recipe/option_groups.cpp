#include "lib/recipe/option_groups.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "lib/common/errors.h"
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
  OptionSpec static_groups = bool_option(
      "static_groups", false,
      "group grids fixed from the original weights before the sweep, so act_order needs no "
      "g_idx (compressed-tensors actorder 'weight'); absent: the value of act_order");
  static_groups.default_value.reset();
  return {bool_option("act_order", false, "visit columns by decreasing Hessian diagonal"),
          std::move(static_groups),
          bool_option("true_sequential", true,
                      "quantize a block's linears in forward order, on quantized inputs")};
}

namespace {

const std::regex& nm_form() {
  static const std::regex kForm("([0-9]{1,4}):([0-9]{1,4})");
  return kForm;
}

}  // namespace

std::string check_sparsity_pattern(const std::string& text) {
  if (text == "unstructured") return "";
  std::smatch match;
  if (!std::regex_match(text, match, nm_form())) {
    return fmt::format(
        "'{}' is neither \"unstructured\" nor of the form \"N:M\" (N zeros in every M inputs)",
        text);
  }
  int n = std::stoi(match[1]), m = std::stoi(match[2]);
  if (n <= 0 || n >= m) return fmt::format("'{}' needs 0 < N < M", text);
  return "";
}

OptionSpec pruning_sequential_option() {
  return bool_option("true_sequential", false,
                     "prune a block's linears in forward order, each input group on the inputs "
                     "of the pruned groups before it (the originals gather a block's once)");
}

std::vector<OptionSpec> pruning_options() {
  OptionSpec sparsity;
  sparsity.key = "sparsity";
  sparsity.type = OptionType::kFloat;
  sparsity.min = 0.0;
  sparsity.max = 1.0;
  sparsity.doc = "fraction of weights set to zero (an N:M pattern implies N/M)";
  sparsity.check = [](const OptionValue& value) -> std::string {
    return std::get<double>(value) >= 1.0 ? "1 would prune every weight; use a value below 1" : "";
  };
  OptionSpec pattern =
      string_option("pattern", "unstructured",
                    "unstructured, or \"N:M\": N zeros in every M consecutive inputs of a row");
  pattern.check = [](const OptionValue& value) -> std::string {
    return check_sparsity_pattern(std::get<std::string>(value));
  };
  return {sparsity, pattern};
}

std::vector<OptionProblem> check_pruning(const PassOptions& options) {
  SparsityPattern pattern = parse_sparsity_pattern(options.get_string("pattern"));
  if (!pattern.structured()) {
    if (options.has("sparsity")) return {};
    return {{"sparsity",
             "sparsity is required for an unstructured mask (or give an N:M pattern, which "
             "implies it)"}};
  }
  double implied = static_cast<double>(pattern.n) / pattern.m;
  if (options.has("sparsity") && std::abs(options.get_float("sparsity") - implied) > 1e-9) {
    return {{"sparsity", fmt::format("sparsity {} contradicts pattern {}, which prunes {} of "
                                     "every {} inputs ({}); leave sparsity out",
                                     options.get_float("sparsity"), options.get_string("pattern"),
                                     pattern.n, pattern.m, implied)}};
  }
  return {};
}

std::vector<std::string> check_pruning_shape(const PassOptions& options, const LinearInfo& linear) {
  int m = parse_sparsity_pattern(options.get_string("pattern")).m;
  if (m > 0 && linear.in_features % m != 0) {
    return {fmt::format(
        "pattern {} needs the input width to be a multiple of {}, but {} [{}, {}] has {} columns",
        options.get_string("pattern"), m, linear.name, linear.out_features, linear.in_features,
        linear.in_features)};
  }
  return {};
}

double pruned_fraction(const PassOptions& options) {
  SparsityPattern pattern = parse_sparsity_pattern(options.get_string("pattern"));
  if (pattern.structured()) return static_cast<double>(pattern.n) / pattern.m;
  return options.get_float("sparsity");
}

namespace {

// The OWL paper's defaults (Yin et al. 2024, section 4: M = 5, λ = 0.08).
constexpr double kOwlThresholdM = 5.0;
constexpr double kOwlLambda = 0.08;

// A float option without a default: absent unless given, so that a key without its switch can
// be reported.
OptionSpec optional_float_option(std::string key, std::optional<double> min,
                                 std::optional<double> max, std::string doc) {
  OptionSpec spec;
  spec.key = std::move(key);
  spec.type = OptionType::kFloat;
  spec.min = min;
  spec.max = max;
  spec.doc = std::move(doc);
  return spec;
}

}  // namespace

std::vector<OptionSpec> owl_options() {
  OptionSpec threshold = optional_float_option(
      "owl_threshold_m", 0.0, std::nullopt,
      "with owl: a score is an outlier above M times its layer's mean (default 5)");
  threshold.check = [](const OptionValue& value) -> std::string {
    return std::get<double>(value) > 0 ? "" : "M must be above 0";
  };
  return {enum_option("sparsity_profile", "uniform", {"uniform", "owl"},
                      "uniform: every layer at sparsity; owl: each decoder layer's sparsity from "
                      "its share of outlier activations (OWL), averaging to sparsity"),
          threshold,
          optional_float_option("owl_lambda", 0.0, 0.5,
                                "with owl: layer sparsities within sparsity ± 2λ (default 0.08)")};
}

std::vector<OptionProblem> check_owl(const PassOptions& options) {
  std::vector<OptionProblem> problems;
  if (options.get_string("sparsity_profile") != "owl") {
    for (const char* key : {"owl_threshold_m", "owl_lambda"}) {
      if (options.has(key)) {
        problems.push_back(
            {key, std::string(key) + " has no effect without sparsity_profile: owl"});
      }
    }
    return problems;
  }
  const std::string& pattern = options.get_string("pattern");
  if (parse_sparsity_pattern(pattern).structured()) {
    problems.push_back(
        {"sparsity_profile", fmt::format("sparsity_profile owl gives each layer its own sparsity, "
                                         "which pattern {} (N/M everywhere) cannot follow; use an "
                                         "unstructured sparsity",
                                         pattern)});
  } else if (options.has("sparsity")) {
    const double sparsity = options.get_float("sparsity");
    const double limit = std::min(sparsity, 1 - sparsity) / 2;
    if (owl_lambda(options) > limit) {
      problems.push_back(
          {"owl_lambda", fmt::format("owl_lambda {} lets a layer's sparsity leave [0, 1) around "
                                     "sparsity {} (each moves by up to 2λ); use at most {:.4g}",
                                     owl_lambda(options), sparsity, limit)});
    }
  }
  return problems;
}

double owl_threshold_m(const PassOptions& options) {
  return options.has("owl_threshold_m") ? options.get_float("owl_threshold_m") : kOwlThresholdM;
}

double owl_lambda(const PassOptions& options) {
  return options.has("owl_lambda") ? options.get_float("owl_lambda") : kOwlLambda;
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

std::vector<OptionSpec> importance_options() {
  return {bool_option("weighted_mse", false,
                      "weigh each column's range-search error by its input's mean x² "
                      "(needs calibration)")};
}

std::vector<OptionSpec> join_options(std::vector<std::vector<OptionSpec>> groups) {
  std::vector<OptionSpec> all;
  for (auto& group : groups) {
    for (auto& spec : group) all.push_back(std::move(spec));
  }
  return all;
}

}  // namespace presso

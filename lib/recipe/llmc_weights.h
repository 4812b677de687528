// Internal to lib/recipe: the QuantizationMixin part of llm-compressor recipes (scheme presets,
// config_groups, observers, GPTQ's actorder), read into our quantization keys.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/recipe/raw_recipe.h"

namespace presso::recipe_internal {

// One weight scheme with its targets: a config group, or a preset with its targets.
struct WeightGroup {
  RawOption targets;
  std::vector<RawOption> quant;   // bits, group_size, symmetric, mse
  std::vector<RawOption> solver;  // GPTQ only: damp, block_size, act_order, static_groups, ...
};

struct QuantizerArgs {
  std::vector<WeightGroup> groups;  // empty when the modifier had problems
  std::optional<RawOption> ignore;
};

// Reads the arguments of a QuantizationModifier (gptq false) or GPTQModifier (gptq true) whose
// keys were already checked against the known ones. `label` names the modifier in messages.
QuantizerArgs read_quantizer_args(const std::vector<std::pair<YAML::Node, YAML::Node>>& args,
                                  const YAML::Mark& mark, const std::string& label, bool gptq,
                                  ProblemList& problems, std::vector<std::string>& warnings);

}  // namespace presso::recipe_internal

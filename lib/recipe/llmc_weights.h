// Internal to lib/recipe: the QuantizationMixin part of llm-compressor recipes (scheme presets,
// config_groups, observers, GPTQ's actorder), read into our quantization keys.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/recipe/llmc_modifier.h"

namespace presso::recipe_internal {

struct QuantizerArgs {
  std::vector<WeightGroup> groups;  // empty when the modifier had problems
  std::optional<RawOption> ignore;
};

// Reads the arguments of a QuantizationModifier (gptq false) or GPTQModifier (gptq true) whose
// keys were already checked against the known ones. `label` names the modifier in messages.
QuantizerArgs read_quantizer_args(const ModifierArgs& args, const YAML::Mark& mark,
                                  const std::string& label, bool gptq, ProblemList& problems,
                                  std::vector<std::string>& warnings);

}  // namespace presso::recipe_internal

// Internal to lib/recipe: one llm-compressor modifier as its ModifierTranslation sees it, and what
// the translation turns it into. The translator (llmc_recipe.cpp) makes recipe entries of the
// result according to the translation's WeightGrid.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/recipe/modifier_translation.h"
#include "lib/recipe/raw_recipe.h"

namespace presso::recipe_internal {

// The arguments of a modifier, key node and value, in file order.
using ModifierArgs = std::vector<std::pair<YAML::Node, YAML::Node>>;

struct LlmcModifier {
  std::string name;   // the class name that picks the translation: "QuantizationModifier"
  std::string label;  // the modifier as the file names it, for messages: "AWQModifier"
  YAML::Mark mark;
  ModifierArgs args;
};

// One weight scheme with its targets: a config group, or a preset with its targets.
struct WeightGroup {
  RawOption targets;
  std::vector<RawOption> quant;   // bits, group_size, symmetric, mse
  std::vector<RawOption> solver;  // GPTQ only: damp, block_size, act_order, static_groups, ...
};

struct TranslatedModifier {
  // WeightGrid::kOwn: the weight groups, each one entry (empty when they had problems), and the
  // modifier's ignore, which also applies to the entries of a kFromNextQuantizer modifier
  // before it.
  std::vector<WeightGroup> groups;
  std::optional<RawOption> ignore;
  // Options of every entry the modifier yields.
  std::vector<RawOption> options;
  // A modifier to read as if it came right after this one, under this one's label: the older
  // AWQModifier's quantization keys make a QuantizationModifier.
  std::optional<std::pair<std::string, ModifierArgs>> follow_up;
};

// What a ModifierTranslation's function receives.
struct ModifierContext {
  const LlmcModifier& modifier;
  ProblemList& problems;
  std::vector<std::string>& warnings;
  TranslatedModifier result;

  // "file:line: label: text" as a problem, or as a warning.
  void add(const YAML::Mark& mark, const std::string& text) const {
    problems.add(mark, modifier.label, text);
  }
  void warn(const YAML::Mark& mark, const std::string& text) const;
};

}  // namespace presso::recipe_internal

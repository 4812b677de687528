// How a pass declares the llm-compressor modifiers that translate to it (PassSchema::modifiers).
// The translator (llmc_recipe.cpp) walks a recipe's stages, groups and modifiers, finds the
// schema that lists each modifier, checks its keys against the declared ones and calls its
// translation; it knows no modifier by name. The translations of llm-compressor's modifier
// families are ready-made in llmc_modifiers.h. Torch-free and YAML-free: passes include this
// through schema.h, and only lib/recipe sees the YAML a translation reads.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace presso {

namespace recipe_internal {
// One modifier of a recipe with its arguments, where problems and warnings go, and what it
// translates into (llmc_modifier.h).
struct ModifierContext;
}  // namespace recipe_internal

// Where the weight grid of a modifier's entries comes from, which decides how a translated
// modifier becomes recipe entries of its pass.
enum class WeightGrid {
  // None (pruning): one entry with the translated options.
  kNone,
  // The modifier quantizes: its translation yields weight groups (a scheme with its targets),
  // and each group becomes one entry with the translated options.
  kOwn,
  // The grid of the next kOwn modifier in the recipe: one entry per weight group of that
  // modifier, with its targets, ignore and grid and this modifier's options (AWQModifier, which
  // only scales). Without such a modifier later in the recipe, the recipe is in error.
  kFromNextQuantizer,
};

struct ModifierTranslation {
  std::string modifier;  // llm-compressor's class name: "GPTQModifier"
  // Keys accepted beyond the Modifier base keys (index, group, start, end, update); any other
  // key is an error, as upstream, where every modifier forbids extra inputs.
  std::vector<std::string> keys;
  WeightGrid grid = WeightGrid::kNone;
  // Reads the modifier's arguments (whose keys are already checked) into the context's result,
  // reporting problems and warnings through the context.
  std::function<void(recipe_internal::ModifierContext&)> translate;
};

}  // namespace presso

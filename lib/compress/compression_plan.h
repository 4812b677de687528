// A recipe resolved against a model and an output format: the passes built from their options,
// the linears each one selects, and every reason the job cannot run, found before any work
// (bad recipe, a linear outside the blocks, a scheme the format cannot store, statistics needed
// but no calibration data). Shared by `presso compress` and `presso recipe check`.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/compress/pass.h"
#include "lib/export/checkpoint_writer.h"
#include "lib/model/model.h"
#include "lib/recipe/recipe.h"

namespace presso {

struct CompressionPlan {
  Recipe recipe;
  Plan plan;
  std::vector<std::string> notes;             // recipe notes and pattern warnings, for the user
  std::vector<std::unique_ptr<Pass>> passes;  // one per recipe entry, in recipe order
  // The selected linears' plans by full name (pointers into `plan`).
  std::map<std::string, const LayerPlan*> selected;
  // What the job stores for each selected linear, as its passes declared (in model order).
  std::vector<LinearPlan> stored;
  bool needs_calibration = false;
};

// UserError listing every problem. `have_calibration`: whether calibration data will be given.
CompressionPlan plan_compression(const std::string& recipe_path, const Model& model,
                                 const PassRegistry& registry, OutputFormat format,
                                 bool have_calibration);

// The linears of `model` a recipe can target, from Model::linears(): those outside the blocks
// (lm_head, OPT's projections) only by a pattern naming them.
std::vector<LinearInfo> model_linears(const Model& model);

// `presso recipe check`: the parsed recipe in canonical form, and with a model the per-layer plan,
// the format check and the serving verdict (serving.h). UserError for a bad recipe or plan, and
// with `strict_serving` for a plan no engine runs on a fast kernel.
std::string check_recipe(const std::string& recipe_path, const PassRegistry& registry,
                         const std::string& model_dir, OutputFormat format,
                         bool strict_serving = false);

}  // namespace presso

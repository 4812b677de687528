#include "lib/compress/compression_plan.h"

#include <fmt/format.h>

#include "lib/common/errors.h"
#include "lib/common/text.h"
#include "lib/export/serving.h"

namespace presso {

std::vector<LinearInfo> model_linears(const Model& model) {
  std::vector<LinearInfo> linears;
  for (const auto& linear : model.linears()) {
    linears.push_back({linear.name, linear.out, linear.in, linear.block >= 0});
  }
  return linears;
}

CompressionPlan plan_compression(const std::string& recipe_path, const Model& model,
                                 const PassRegistry& registry, OutputFormat format,
                                 bool have_calibration) {
  CompressionPlan job;
  const std::vector<PassSchema> schemas = registry_schemas(registry);
  job.recipe = load_recipe(recipe_path, schemas, &job.notes);
  job.plan = resolve_plan(job.recipe, schemas, model_linears(model));
  for (const auto& warning : job.plan.warnings) job.notes.push_back(warning);
  for (const auto& entry : job.recipe.passes) {
    job.passes.push_back(find_pass(registry, entry.pass).create(entry.options));
  }

  std::vector<std::string> problems;
  for (const auto& layer : job.plan.layers) {
    if (layer.passes.empty()) continue;
    if (!layer.linear.in_block) {
      problems.push_back(fmt::format(
          "{}: the recipe selects {}, which lies outside the decoder blocks; compressing it is "
          "not supported yet (add it to the pass's ignore list)",
          recipe_path, layer.linear.name));
      continue;
    }
    job.selected[layer.linear.name] = &layer;
    LinearPlan stored;
    stored.name = layer.linear.name;
    stored.out_features = layer.linear.out_features;
    stored.in_features = layer.linear.in_features;
    for (size_t index : layer.passes) {
      const Pass& pass = *job.passes[index];
      job.needs_calibration = job.needs_calibration || pass.needs_calibration();
      pass.plan(stored);
    }
    job.stored.push_back(stored);
  }
  for (const auto& problem : checkpoint_problems(format, model, job.stored)) {
    problems.push_back(fmt::format("--format {}: {}", output_format_name(format), problem));
  }
  if (job.needs_calibration && !have_calibration) {
    problems.push_back(fmt::format(
        "{}: the recipe's passes need calibration data: give a calibration file with --calib",
        recipe_path));
  }
  if (!problems.empty()) {
    throw UserError(fmt::format("{}", fmt::join(fold_block_indices(problems), "\n")));
  }
  return job;
}

std::string check_recipe(const std::string& recipe_path, const PassRegistry& registry,
                         const std::string& model_dir, OutputFormat format, bool strict_serving) {
  const std::vector<PassSchema> schemas = registry_schemas(registry);
  if (model_dir.empty()) {
    std::vector<std::string> notes;
    Recipe recipe = load_recipe(recipe_path, schemas, &notes);
    std::string text = print_recipe(recipe);
    for (const auto& note : notes) text += "# note: " + note + "\n";
    return text;
  }
  Model model = Model::open(model_dir);
  CompressionPlan job = plan_compression(recipe_path, model, registry, format, true);
  std::string text = format_plan(job.recipe, schemas, job.plan);
  for (const auto& note : job.notes) {
    if (text.find(note) == std::string::npos) text += "note: " + note + "\n";
  }
  return text + plan_serving_report(format, model, job.stored, strict_serving);
}

}  // namespace presso

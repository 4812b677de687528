// The resolved plan as text, for `presso recipe check RECIPE --model DIR`.
#include <fmt/format.h>

#include <algorithm>

#include "lib/common/errors.h"
#include "lib/recipe/recipe.h"

namespace presso {
namespace {

bool is_target_key(const std::string& key) { return key == "targets" || key == "ignore"; }

// "gptq(bits=4 group_size=128 ...)" with the schema's plan keys.
std::string short_settings(const PassEntry& entry, const std::vector<PassSchema>& schemas) {
  auto schema = std::find_if(schemas.begin(), schemas.end(),
                             [&](const PassSchema& s) { return s.name == entry.pass; });
  if (schema == schemas.end()) fail_internal("no schema for pass '{}'", entry.pass);
  std::string settings;
  for (const auto& [key, value] : entry.options.entries()) {
    bool shown = schema->plan_keys.empty()
                     ? !is_target_key(key)
                     : std::find(schema->plan_keys.begin(), schema->plan_keys.end(), key) !=
                           schema->plan_keys.end();
    if (shown)
      settings +=
          fmt::format("{}{}={}", settings.empty() ? "" : " ", key, format_option_value(value));
  }
  return fmt::format("{}({})", entry.pass, settings);
}

}  // namespace

std::string format_plan(const Recipe& recipe, const std::vector<PassSchema>& schemas,
                        const Plan& plan) {
  std::string out = "passes:\n";
  std::vector<std::string> short_forms;
  for (size_t i = 0; i < recipe.passes.size(); ++i) {
    const PassEntry& entry = recipe.passes[i];
    short_forms.push_back(short_settings(entry, schemas));
    out += fmt::format("  {}. {} ({}:{}, {})\n", i + 1, entry.pass, entry.where.file,
                       entry.where.line, entry.where.label);
    for (const auto& [key, value] : entry.options.entries()) {
      out += fmt::format("       {}: {}\n", key, format_option_value(value));
    }
  }

  size_t name_width = 5, shape_width = 9;
  std::vector<std::string> shapes;
  size_t compressed = 0;
  for (const auto& layer : plan.layers) {
    shapes.push_back(fmt::format("[{}, {}]", layer.linear.out_features, layer.linear.in_features));
    name_width = std::max(name_width, layer.linear.name.size());
    shape_width = std::max(shape_width, shapes.back().size());
    compressed += layer.passes.empty() ? 0 : 1;
  }
  out += fmt::format("\nplan: {} of {} linears compressed\n", compressed, plan.layers.size());
  out += fmt::format("  {:<{}}  {:<{}}  {}\n", "layer", name_width, "[out, in]", shape_width,
                     "passes, in order");
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    const LayerPlan& layer = plan.layers[l];
    std::string passes;
    for (size_t index : layer.passes) {
      passes += (passes.empty() ? "" : " -> ") + short_forms.at(index);
    }
    out += fmt::format("  {:<{}}  {:<{}}  {}\n", layer.linear.name, name_width, shapes[l],
                       shape_width, passes.empty() ? "(left as is)" : passes);
  }
  if (!plan.warnings.empty()) {
    out += "\nwarnings:\n";
    for (const auto& warning : plan.warnings) out += "  " + warning + "\n";
  }
  return out;
}

}  // namespace presso

// Shared by the recipe tests: pass schemas to parse against, and parsing of an in-memory recipe.
//
// rtn, gptq and magnitude are the registered passes' schemas; awq, sparsegpt and wanda are
// stand-ins built from lib/recipe's option groups and modifier translations until their passes
// land (then they come from the registry too).
#pragma once

#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/recipe/llmc_modifiers.h"
#include "lib/recipe/option_groups.h"
#include "lib/recipe/recipe.h"
#include "passes/registry.h"

namespace presso::test {

// The registered passes' own schemas.
inline PassSchema rtn_schema() { return rtn_pass().schema; }
inline PassSchema gptq_schema() { return gptq_pass().schema; }
inline PassSchema magnitude_schema() { return magnitude_pass().schema; }

// A stand-in for a pass not written yet: its options and the modifier that translates to it.
inline PassSchema stand_in(std::string name, std::vector<OptionSpec> options,
                           std::vector<std::string> plan_keys, ModifierTranslation modifier,
                           bool pruning) {
  PassSchema schema;
  schema.name = std::move(name);
  schema.summary = "stand-in";
  schema.options = std::move(options);
  if (pruning) {
    schema.cross_check = check_pruning;
    schema.shape_check = check_pruning_shape;
  } else {
    schema.shape_check = check_quant_shape;
  }
  schema.plan_keys = std::move(plan_keys);
  schema.modifiers = {std::move(modifier)};
  return schema;
}

inline PassSchema awq_schema() {
  return stand_in("awq", join_options({target_options(), quant_options(), awq_options()}),
                  {"bits", "group_size", "symmetric"}, awq_modifier_translation(), false);
}

inline PassSchema sparsegpt_schema() {
  return stand_in("sparsegpt", join_options({target_options(), pruning_options(), obs_options()}),
                  {"sparsity", "pattern"}, sparsegpt_modifier_translation(), true);
}

inline PassSchema wanda_schema() {
  return stand_in("wanda", join_options({target_options(), pruning_options()}),
                  {"sparsity", "pattern"}, wanda_modifier_translation(), true);
}

inline const std::vector<PassSchema>& test_schemas() {
  static const std::vector<PassSchema> all = {rtn_schema(),   gptq_schema(),
                                              awq_schema(),   sparsegpt_schema(),
                                              wanda_schema(), magnitude_schema()};
  return all;
}

inline Recipe parse(const std::string& text, std::vector<std::string>* warnings = nullptr) {
  return parse_recipe(text, "r.yaml", test_schemas(), warnings);
}

// The UserError text, or "" when the recipe parses.
inline std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace presso::test

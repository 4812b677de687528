// Shared by the recipe tests: pass schemas to parse against, and parsing of an in-memory recipe.
//
// Every schema is the registered pass's own.
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
inline PassSchema awq_schema() { return awq_pass().schema; }
inline PassSchema wanda_schema() { return wanda_pass().schema; }
inline PassSchema sparsegpt_schema() { return sparsegpt_pass().schema; }

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

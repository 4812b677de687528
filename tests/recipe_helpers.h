// Shared by the recipe tests: the standard pass schemas and parsing of an in-memory recipe.
#pragma once

#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/recipe/recipe.h"

namespace presso::test {

inline const std::vector<PassSchema>& schemas() {
  static const std::vector<PassSchema> all = standard_schemas();
  return all;
}

inline Recipe parse(const std::string& text, std::vector<std::string>* warnings = nullptr) {
  return parse_recipe(text, "r.yaml", schemas(), warnings);
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

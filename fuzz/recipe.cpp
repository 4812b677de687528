// Recipe YAML in both spellings, ours and llm-compressor's, parsed against the registered passes
// (the per-layer plan needs a model and is left out). An accepted recipe must round-trip:
// parse(print(r)) == r, the promise of print_recipe.
#include "lib/recipe/recipe.h"

#include <string>
#include <vector>

#include "fuzz/harness.h"
#include "passes/registry.h"

namespace presso {

bool fuzz_recipe(std::string_view input) {
  static const std::vector<PassSchema> schemas = registry_schemas(pass_registry());
  std::vector<std::string> warnings;
  const Recipe recipe = parse_recipe(std::string(input), "recipe.yaml", schemas, &warnings);
  const std::string printed = print_recipe(recipe);
  fuzz_expect(parse_recipe(printed, "printed.yaml", schemas) == recipe,
              "a printed recipe parses back to the same recipe");
  return true;
}

}  // namespace presso

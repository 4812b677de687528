// Recipes in presso's own spelling: typed options, every kind of bad recipe, round trips.
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/recipe/recipe.h"
#include "tests/catch_torch.h"
#include "tests/recipe_helpers.h"

namespace {

using namespace presso;
using presso::test::error_of;
using presso::test::parse;
using presso::test::test_schemas;

std::string data(const std::string& name) {
  return std::string(PRESSO_TEST_DATA) + "/recipes/" + name;
}

}  // namespace

TEST_CASE("our spelling parses into typed options with defaults filled", "[unit]") {
  Recipe recipe = load_recipe(data("w4g128-awq-gptq.yaml"), test_schemas());
  REQUIRE(recipe.passes.size() == 2);
  const PassEntry& awq = recipe.passes[0];
  const PassEntry& gptq = recipe.passes[1];
  CHECK(awq.pass == "awq");
  CHECK(awq.where.line == 3);
  CHECK(awq.options.get_strings("targets") == std::vector<std::string>{"re:.*_proj$"});
  CHECK(awq.options.get_int("bits") == 4);
  CHECK(awq.options.get_string("duo_scaling") == "true");
  CHECK(awq.options.get_int("n_grid") == 20);
  CHECK(awq.options.get_mappings("mappings").empty());
  CHECK(gptq.where.line == 7);
  CHECK(gptq.options.get_strings("targets") == std::vector<std::string>{"Linear"});
  CHECK(gptq.options.get_strings("ignore") == std::vector<std::string>{"lm_head"});
  CHECK_FALSE(gptq.options.get_bool("symmetric"));
  CHECK(gptq.options.get_bool("act_order"));
  CHECK_FALSE(gptq.options.has("static_groups"));  // unset: follows act_order (static groups)
  CHECK(gptq.options.get_float("damp") == 0.01);
  CHECK(gptq.options.get_int("block_size") == 128);
  CHECK_FALSE(gptq.options.get_bool("mse"));
}

TEST_CASE("typed getters throw InternalError on misuse", "[unit]") {
  Recipe recipe = parse("passes:\n  - rtn\n");
  const PassOptions& options = recipe.passes[0].options;
  CHECK_THROWS_AS(options.get_int("symmetric"), InternalError);
  CHECK_THROWS_AS(options.get_bool("act_order"), InternalError);
  CHECK_THROWS_AS(options.get_string("bits"), InternalError);
}

TEST_CASE("short entry forms, lone strings as lists, and yes/no words", "[unit]") {
  Recipe recipe = parse(
      "passes:\n"
      "  - rtn\n"
      "  - gptq:\n"
      "  - awq: {targets: q_proj, duo_scaling: no, mappings: [{smooth_layer: input_layernorm, "
      "balance_layers: [q_proj, k_proj]}]}\n");
  REQUIRE(recipe.passes.size() == 3);
  CHECK(recipe.passes[1].options.get_int("group_size") == 128);
  CHECK(recipe.passes[2].options.get_strings("targets") == std::vector<std::string>{"q_proj"});
  CHECK(recipe.passes[2].options.get_string("duo_scaling") == "false");
  const auto& mappings = recipe.passes[2].options.get_mappings("mappings");
  REQUIRE(mappings.size() == 1);
  CHECK(mappings[0].smooth_layer == "input_layernorm");
  CHECK(mappings[0].balance_layers == std::vector<std::string>{"q_proj", "k_proj"});
}

TEST_CASE("each kind of bad recipe names file, line and key", "[unit]") {
  struct Case {
    const char* what;
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"unknown key", "passes:\n  - gptq:\n      blocksize: 64\n",
       "r.yaml:3: gptq: unknown key 'blocksize' (did you mean 'block_size'?)"},
      {"wrong type", "passes:\n  - gptq: {bits: four}\n",
       "r.yaml:2: gptq: bits: expected an integer, got 'four'"},
      {"float for an int", "passes:\n  - rtn: {bits: 4.5}\n",
       "r.yaml:2: rtn: bits: expected an integer, got '4.5'"},
      {"out of range", "passes:\n  - rtn:\n      bits: 9\n",
       "r.yaml:3: rtn: bits: 9 is out of range [2, 8]"},
      {"group size zero", "passes:\n  - rtn: {group_size: 0}\n",
       "r.yaml:2: rtn: group_size: 0 is not a group size"},
      {"not a bool", "passes:\n  - rtn: {symmetric: maybe}\n",
       "r.yaml:2: rtn: symmetric: expected true or false, got 'maybe'"},
      {"negative damp", "passes:\n  - gptq: {damp: -0.1}\n",
       "r.yaml:2: gptq: damp: -0.1 is out of range [0, inf]"},
      {"enum word", "passes:\n  - awq: {duo_scaling: sometimes}\n",
       "r.yaml:2: awq: duo_scaling: 'sometimes' is not one of: true, false, both"},
      {"unknown pass", "passes:\n  - gtpq: {bits: 4}\n",
       "r.yaml:2: unknown pass 'gtpq' (did you mean 'gptq'?) (available: rtn, gptq, awq, "
       "sparsegpt, wanda, magnitude)"},
      {"entry with two keys", "passes:\n  - {gptq: {}, rtn: {}}\n",
       "r.yaml:2: passes: each entry must be a one-key mapping `- name: {options}`, got a "
       "mapping with 2 keys"},
      {"options not a mapping", "passes:\n  - gptq: [4, 128]\n",
       "r.yaml:2: gptq: options must be a mapping of key: value, got a list"},
      {"block size zero", "passes:\n  - gptq:\n      static_groups: false\n      block_size: 0\n",
       "r.yaml:4: gptq: block_size: 0 is out of range [1, inf]"},
      {"pattern without zeros", "passes:\n  - sparsegpt: {sparsity: 0.5, pattern: \"0:4\"}\n",
       "r.yaml:2: sparsegpt: pattern: '0:4' needs 0 < N < M"},
      {"missing sparsity", "passes:\n  - sparsegpt: {}\n",
       "r.yaml:2: sparsegpt: sparsity is required for an unstructured mask"},
      {"sparsity of one", "passes:\n  - wanda: {sparsity: 1}\n",
       "r.yaml:2: wanda: sparsity: 1 would prune every weight"},
      {"pattern form", "passes:\n  - wanda: {pattern: 2-4}\n",
       "r.yaml:2: wanda: pattern: '2-4' is neither \"unstructured\" nor of the form \"N:M\""},
      {"pattern order", "passes:\n  - wanda: {pattern: \"4:2\"}\n",
       "r.yaml:2: wanda: pattern: '4:2' needs 0 < N < M"},
      {"pattern pruning all", "passes:\n  - magnitude: {pattern: \"4:4\"}\n",
       "r.yaml:2: magnitude: pattern: '4:4' needs 0 < N < M"},
      {"sparsity against pattern",
       "passes:\n  - magnitude:\n      sparsity: 0.6\n"
       "      pattern: \"2:4\"\n",
       "r.yaml:3: magnitude: sparsity 0.6 contradicts pattern 2:4, which prunes 2 of every 4 "
       "inputs (0.5); leave sparsity out"},
      {"scope word", "passes:\n  - magnitude: {sparsity: 0.5, scope: model}\n",
       "r.yaml:2: magnitude: scope: 'model' is not one of: layer, row, global"},
      {"scope with N:M", "passes:\n  - magnitude: {pattern: \"2:4\", scope: global}\n",
       "r.yaml:2: magnitude: scope global has no effect with an N:M pattern"},
      {"bad regex", "passes:\n  - rtn:\n      targets: [\"re:(q|k\"]\n",
       "r.yaml:3: rtn: targets: 're:(q|k' is not a valid regular expression"},
      {"targets not a list", "passes:\n  - rtn: {targets: {q_proj: 1}}\n",
       "r.yaml:2: rtn: targets: expected a list of strings, got a mapping"},
      {"key given twice", "passes:\n  - rtn:\n      bits: 4\n      bits: 3\n",
       "r.yaml:4: rtn: 'bits' is given twice (first on line 3)"},
      {"bad mapping", "passes:\n  - awq: {mappings: [{smooth: x, balance_layers: [y]}]}\n",
       "r.yaml:2: awq: mappings: unknown mapping key 'smooth' (did you mean 'smooth_layer'?)"},
      {"yaml syntax", "passes:\n  - rtn: {bits: [4\n  - gptq\n", "r.yaml:4: YAML syntax error:"},
      {"empty file", "# nothing\n", "r.yaml: empty recipe"},
      {"empty list", "passes: []\n", "r.yaml:1: empty recipe: `passes` lists no pass"},
      {"passes not a list", "passes: gptq\n",
       "r.yaml:1: passes: expected a list of passes, got 'gptq'"},
      {"unknown top-level key", "passes:\n  - rtn\npasess: 1\n",
       "r.yaml:3: unknown top-level key 'pasess' (did you mean 'passes'?)"},
      {"neither spelling", "recipe:\n  - rtn\n",
       "r.yaml:1: expected `passes:` or llm-compressor `*_stage:` keys, got keys: recipe"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    std::string error = error_of(c.text);
    CHECK_THAT(error, Catch::Contains(c.expected));
  }
}

TEST_CASE("every act_order and static_groups combination is a valid gptq recipe", "[unit]") {
  for (const char* act_order : {"false", "true"}) {
    for (const char* static_groups : {"false", "true"}) {
      for (const char* group_size : {"-1", "128"}) {
        const std::string text = std::string("passes:\n  - gptq: {act_order: ") + act_order +
                                 ", static_groups: " + static_groups +
                                 ", group_size: " + group_size + "}\n";
        INFO(text);
        CHECK(error_of(text).empty());
      }
    }
  }
  const Recipe recipe = parse("passes:\n  - gptq\n");
  const PassOptions& defaults = recipe.passes[0].options;
  CHECK_FALSE(defaults.get_bool("act_order"));
  // Unset, static_groups follows act_order (gptq.cpp).
  CHECK_FALSE(defaults.has("static_groups"));
}

TEST_CASE("gptq act-order stores a g_idx only when static_groups is false", "[unit]") {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"act_order: false", false},
      {"act_order: true", false},
      {"act_order: true, static_groups: true", false},
      {"act_order: true, static_groups: false", true},
      {"act_order: false, static_groups: false", false},
      {"act_order: true, static_groups: false, group_size: -1", false},
  };
  for (const auto& [options, g_idx] : cases) {
    INFO(options);
    const Recipe recipe = parse("passes:\n  - gptq: {" + options + "}\n");
    const auto pass = gptq_pass().create(recipe.passes[0].options);
    LinearPlan plan;
    pass->plan(plan);
    CHECK(plan.g_idx == g_idx);
  }
}

TEST_CASE("a recipe with three problems reports all three at once", "[unit]") {
  std::string error;
  try {
    load_recipe(data("three-problems.yaml"), test_schemas());
  } catch (const UserError& e) {
    error = e.what();
  }
  std::string file = data("three-problems.yaml");
  CHECK(error == file + ":3: gptq: bits: 9 is out of range [2, 8]\n" + file +
                     ":4: gptq: unknown key 'blocksize' (did you mean 'block_size'?)\n" + file +
                     ":5: gptq: damp: expected a number, got 'lots'");
}

TEST_CASE("problems of several passes come sorted by line", "[unit]") {
  std::string error = error_of("passes:\n  - nope\n  - rtn: {bits: 1}\n  - wanda: {sparsity: 2}\n");
  CHECK(error ==
        "r.yaml:2: unknown pass 'nope' (available: rtn, gptq, awq, sparsegpt, wanda, magnitude)\n"
        "r.yaml:3: rtn: bits: 1 is out of range [2, 8]\n"
        "r.yaml:4: wanda: sparsity: 2.0 is out of range [0, 1]");
}

TEST_CASE("printing our recipes round-trips", "[unit]") {
  const std::vector<std::string> recipes = {
      "passes:\n  - rtn\n",
      "passes:\n  - gptq: {bits: 3, group_size: -1, damp: 0.1, act_order: false, "
      "true_sequential: false, targets: [\"re:.*\\\\.mlp\\\\..*\", lm_head], ignore: [\"true\"]}\n",
      "passes:\n  - awq: {duo_scaling: both, n_grid: 7, clip: false, mappings: [{smooth_layer: "
      "\"re:.*input_layernorm$\", balance_layers: [\"re:.*q_proj$\", k_proj]}]}\n"
      "  - gptq: {static_groups: false, damp: 1e-7, mse: true}\n",
      "passes:\n  - sparsegpt: {sparsity: 0.5, pattern: \"2:4\"}\n"
      "  - wanda: {sparsity: 0.3333333333333333}\n  - magnitude: {pattern: \"1:3\"}\n"
      "  - magnitude: {sparsity: 0.6, scope: global, pattern: unstructured}\n",
  };
  for (const auto& text : recipes) {
    INFO(text);
    Recipe first = parse(text);
    std::string printed = print_recipe(first);
    INFO(printed);
    Recipe second = parse(printed);
    CHECK(second == first);
    CHECK(print_recipe(second) == printed);
  }
  Recipe file = load_recipe(data("w4g128-awq-gptq.yaml"), test_schemas());
  CHECK(parse(print_recipe(file)) == file);
}

TEST_CASE("recipes that differ in one option are not equal", "[unit]") {
  CHECK(parse("passes:\n  - rtn\n") == parse("passes:\n  - rtn: {bits: 4}\n"));
  CHECK(parse("passes:\n  - rtn\n") != parse("passes:\n  - rtn: {bits: 3}\n"));
  CHECK(parse("passes:\n  - rtn\n  - gptq\n") != parse("passes:\n  - gptq\n  - rtn\n"));
}

TEST_CASE("a schema describes its options for presso list", "[unit]") {
  std::string text = describe_schema(presso::test::gptq_schema());
  CHECK_THAT(text, Catch::StartsWith("gptq: "));
  CHECK_THAT(text, Catch::Contains("bits"));
  CHECK_THAT(text, Catch::Contains("an integer in [2, 8]; default 4."));
  CHECK_THAT(describe_schema(presso::test::sparsegpt_schema()), Catch::Contains("sparsity"));
}

// Recipes that used to crash or hang presso: a target regex with 20k nested groups (SIGSEGV in
// std::regex), one that backtracks catastrophically on the model's names (hang), YAML nested 100k
// levels deep, and a mask_structure of 200k digits (SIGSEGV in std::regex).
#include <chrono>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/recipe/recipe.h"
#include "tests/catch_torch.h"
#include "tests/recipe_helpers.h"
#include "tests/user_error.h"

namespace {

using namespace presso;
using Catch::Matchers::Contains;
using presso::test::error_of;
using presso::test::parse;
using presso::test::test_schemas;
using presso::test::user_error_of;

std::string rtn_targets(const std::string& target) {
  return "passes:\n  - rtn:\n      targets: [\"" + target + "\"]\n";
}

}  // namespace

TEST_CASE("a target regex with 20k nested groups is refused naming the target", "[unit]") {
  const std::string nested = "re:" + std::string(20000, '(') + "x" + std::string(20000, ')');
  const std::string message = error_of(rtn_targets(nested));
  CHECK_THAT(message, Contains("r.yaml:3") && Contains("too deeply nested"));
  CHECK(message.size() < 1000);  // the pattern is abbreviated
}

TEST_CASE("a target regex that backtracks catastrophically is refused naming it", "[unit]") {
  const std::vector<LinearInfo> linears = {{"model.layers.0.self_attn.q_proj", 256, 256, true},
                                           {"model.layers.0.mlp.down_proj", 256, 384, true}};
  const auto start = std::chrono::steady_clock::now();
  // `(.+)+x` hung std::regex; PCRE2 sees at once that no name holds an x.
  CHECK_THAT(user_error_of(
                 [&] { resolve_plan(parse(rtn_targets("re:(.+)+x")), test_schemas(), linears); }),
             Contains("selects no linear"));
  CHECK_THAT(user_error_of([&] {
               resolve_plan(parse(rtn_targets("re:(.+)+[xz]")), test_schemas(), linears);
             }),
             Contains("r.yaml:2: rtn: target pattern 're:(.+)+[xz]'") &&
                 Contains("model.layers.0.self_attn.q_proj") &&
                 Contains("backtracks catastrophically"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("YAML nested 100k levels deep is refused naming the file", "[unit]") {
  const int depth = 100000;
  CHECK_THAT(error_of("passes: " + std::string(depth, '[') + std::string(depth, ']') + "\n"),
             Contains("r.yaml:1") && Contains("nests deeper"));
}

TEST_CASE("an llm-compressor mask_structure of 200k digits is refused without a crash", "[unit]") {
  const std::string digits(200000, '1');
  const std::string message = error_of(
      "quant_stage:\n  pruning_modifiers:\n    MagnitudePruningModifier:\n"
      "      init_sparsity: 0.1\n      final_sparsity: 0.5\n      mask_structure: \"" +
      digits + ":4\"\n");
  CHECK_THAT(message, Contains("mask_structure") && Contains("N:M"));
  CHECK(message.size() < 2000);
}

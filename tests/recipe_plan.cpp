// Target matching and the per-layer plan of a recipe resolved against a model's linears.
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

// A two-block llama-shaped model: hidden 256, intermediate `intermediate`, untied lm_head.
std::vector<LinearInfo> llama_linears(int64_t intermediate = 384) {
  std::vector<LinearInfo> linears;
  for (int layer = 0; layer < 2; ++layer) {
    std::string block = "model.layers." + std::to_string(layer) + ".";
    for (const char* name : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      linears.push_back({block + "self_attn." + name, 256, 256, true});
    }
    linears.push_back({block + "mlp.gate_proj", intermediate, 256, true});
    linears.push_back({block + "mlp.up_proj", intermediate, 256, true});
    linears.push_back({block + "mlp.down_proj", 256, intermediate, true});
  }
  linears.push_back({"lm_head", 1000, 256, false});
  return linears;
}

std::vector<std::string> selected(const Plan& plan, size_t pass) {
  std::vector<std::string> names;
  for (const auto& layer : plan.layers) {
    for (size_t index : layer.passes) {
      if (index == pass) names.push_back(layer.linear.name);
    }
  }
  return names;
}

std::string resolve_error(const std::string& recipe, const std::vector<LinearInfo>& linears) {
  try {
    resolve_plan(parse(recipe), test_schemas(), linears);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("patterns: exact name, dot suffix, prefix-anchored regex, Linear", "[unit]") {
  const std::string q = "model.layers.1.self_attn.q_proj";
  CHECK(TargetPattern(q).matches(q));
  CHECK(TargetPattern("q_proj").matches(q));
  CHECK(TargetPattern("self_attn.q_proj").matches(q));
  CHECK_FALSE(TargetPattern("proj").matches(q));         // not at a dot boundary
  CHECK_FALSE(TargetPattern("attn.q_proj").matches(q));  // "self_attn" is one component
  CHECK(TargetPattern("Linear").matches(q));
  // Python re.match semantics: anchored at the start only.
  CHECK(TargetPattern("re:.*q_proj").matches(q + "_extra"));
  CHECK_FALSE(TargetPattern("re:.*q_proj$").matches(q + "_extra"));
  CHECK(TargetPattern("re:model\\.layers\\.1").matches("model.layers.12.mlp.up_proj"));
  CHECK_FALSE(TargetPattern("re:q_proj").matches(q));  // not a search
  CHECK(check_target_pattern("re:[").find("not a valid regular expression") != std::string::npos);
  CHECK(check_target_pattern("re:.*").empty());
}

TEST_CASE("lm_head is compressed only when targets name it", "[unit]") {
  LinearInfo head{"lm_head", 1000, 256, false};
  CHECK_FALSE(TargetPattern("Linear").selects(head));
  CHECK_FALSE(TargetPattern("re:.*").selects(head));
  CHECK(TargetPattern("lm_head").selects(head));
  CHECK(TargetPattern("re:.*lm_head").selects(head));

  Plan plan = resolve_plan(parse("passes:\n  - rtn\n  - gptq: {targets: [lm_head]}\n"),
                           test_schemas(), llama_linears());
  CHECK(selected(plan, 0).size() == 14);
  CHECK(selected(plan, 1) == std::vector<std::string>{"lm_head"});
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings[0] ==
        "r.yaml:2: rtn: lm_head is outside the decoder blocks and left alone; name it in targets "
        "('lm_head') to compress it");
}

TEST_CASE("ignore wins over targets, and passes keep recipe order", "[unit]") {
  Plan plan = resolve_plan(
      parse("passes:\n  - awq: {targets: [\"re:.*_proj$\"], ignore: [down_proj, lm_head]}\n"
            "  - gptq: {targets: [self_attn.q_proj, model.layers.1.mlp.down_proj]}\n"),
      test_schemas(), llama_linears());
  CHECK(selected(plan, 0).size() == 12);
  CHECK(selected(plan, 1) == std::vector<std::string>{"model.layers.0.self_attn.q_proj",
                                                      "model.layers.1.self_attn.q_proj",
                                                      "model.layers.1.mlp.down_proj"});
  CHECK(plan.layers[0].passes == std::vector<size_t>{0, 1});
  CHECK(plan.layers[6].passes == std::vector<size_t>{});  // model.layers.0.mlp.down_proj
  CHECK(plan.layers[13].passes == std::vector<size_t>{1});
  // lm_head in ignore matches the head (no warning) though the targets never selected it.
  CHECK(plan.warnings.empty());
}

TEST_CASE("patterns that match nothing are warnings, selecting nothing is an error", "[unit]") {
  Plan plan = resolve_plan(parse("passes:\n  - rtn: {targets: [q_proj, fc1], ignore: [fc2]}\n"),
                           test_schemas(), llama_linears());
  CHECK(plan.warnings ==
        std::vector<std::string>{"r.yaml:2: rtn: target pattern 'fc1' matches no linear",
                                 "r.yaml:2: rtn: ignore pattern 'fc2' matches no linear"});
  CHECK(resolve_error("passes:\n  - rtn: {bits: 4}\n  - wanda: {sparsity: 0.5, targets: "
                      "[q_proj], ignore: [Linear]}\n",
                      llama_linears()) ==
        "r.yaml:3: wanda: selects no linear of this model (targets [q_proj], ignore [Linear])");
}

TEST_CASE("model checks: group size and N:M must fit the input width", "[unit]") {
  std::string error = resolve_error(
      "passes:\n  - gptq: {group_size: 128, targets: [down_proj]}\n"
      "  - wanda: {pattern: \"2:4\", targets: [lm_head, o_proj]}\n",
      llama_linears(320) /* down_proj has 320 inputs */);
  // The same problem in every block is said once, naming the blocks.
  CHECK(error ==
        "r.yaml:2: gptq: group_size 128 does not divide the 320 input columns of "
        "model.layers.{0,1}.mlp.down_proj [256, 320]");
  std::vector<LinearInfo> odd = {{"model.layers.0.mlp.fc2", 64, 66, true}};
  CHECK(resolve_error("passes:\n  - wanda: {pattern: \"2:4\"}\n", odd) ==
        "r.yaml:2: wanda: pattern 2:4 needs the input width to be a multiple of 4, but "
        "model.layers.0.mlp.fc2 [64, 66] has 66 columns");
  CHECK_NOTHROW(resolve_plan(parse("passes:\n  - rtn: {group_size: -1}\n"), test_schemas(), odd));
}

TEST_CASE("the plan prints one row per linear with its passes", "[unit]") {
  Recipe recipe = parse("passes:\n  - awq: {ignore: [v_proj]}\n  - gptq: {symmetric: false}\n");
  Plan plan = resolve_plan(recipe, test_schemas(), llama_linears());
  std::string text = format_plan(recipe, test_schemas(), plan);
  INFO(text);
  CHECK_THAT(text, Catch::Contains("  1. awq (r.yaml:2, awq)\n"));
  CHECK_THAT(text, Catch::Contains("plan: 14 of 15 linears compressed\n"));
  CHECK_THAT(text, Catch::Contains(
                       "  model.layers.0.self_attn.q_proj  [256, 256]   awq(bits=4 group_size=128 "
                       "symmetric=true duo_scaling=\"true\" clip=true) -> gptq(bits=4 "
                       "group_size=128 symmetric=false act_order=false)\n"));
  CHECK_THAT(text, Catch::Contains("  model.layers.0.self_attn.v_proj  [256, 256]   gptq("));
  CHECK_THAT(text, Catch::Contains("  lm_head                          [1000, 256]  (left as is)"));
  CHECK_THAT(text, Catch::Contains("warnings:\n  r.yaml:2: awq: lm_head is outside"));
}

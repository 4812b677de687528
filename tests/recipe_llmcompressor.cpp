// llm-compressor recipes translated into presso passes: modifiers, presets, config groups,
// actorder, unsupported and unknown keys.
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

// A one-modifier recipe: `body` is the modifier's arguments, indented by 6.
std::string modifier(const std::string& name, const std::string& body) {
  return "quant_stage:\n  quant_modifiers:\n    " + name + ":\n" + body;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("the GPTQModifier docstring recipe becomes one gptq pass", "[unit]") {
  // The sample of src/llmcompressor/modifiers/gptq/base.py.
  Recipe recipe = parse(
      "test_stage:\n  obcq_modifiers:\n    GPTQModifier:\n      block_size: 128\n"
      "      dampening_frac: 0.001\n      offload_hessians: False\n      actorder: static\n"
      "      config_groups:\n        group_0:\n          targets:\n            - \"Linear\"\n"
      "          input_activations: null\n          output_activations: null\n"
      "          weights:\n            num_bits: 8\n            type: \"int\"\n"
      "            symmetric: true\n            strategy: group\n            group_size: 128\n");
  REQUIRE(recipe.passes.size() == 1);
  const PassEntry& gptq = recipe.passes[0];
  CHECK(gptq.pass == "gptq");
  CHECK(gptq.where.label == "GPTQModifier");
  CHECK(gptq.where.line == 3);
  CHECK(gptq.options.get_strings("targets") == Strings{"Linear"});
  CHECK(gptq.options.get_int("bits") == 8);
  CHECK(gptq.options.get_int("group_size") == 128);
  CHECK(gptq.options.get_bool("symmetric"));
  CHECK(gptq.options.get_float("damp") == 0.001);
  CHECK(gptq.options.get_int("block_size") == 128);
  CHECK(gptq.options.get_bool("act_order"));
  CHECK(gptq.options.get_bool("static_groups"));
  CHECK_FALSE(gptq.options.get_bool("true_sequential"));
}

TEST_CASE("presets translate to bits, group size and symmetry", "[unit]") {
  struct Case {
    std::string scheme;
    int64_t bits;
    bool symmetric;
  };
  for (const auto& c : std::vector<Case>{
           {"W4A16", 4, true}, {"W4A16_ASYM", 4, false}, {"w8a16", 8, true}, {"W3A16", 3, true}}) {
    INFO(c.scheme);
    Recipe recipe = parse(modifier("QuantizationModifier", "      scheme: " + c.scheme +
                                                               "\n      targets: Linear\n"
                                                               "      ignore: [lm_head]\n"));
    REQUIRE(recipe.passes.size() == 1);
    const PassOptions& rtn = recipe.passes[0].options;
    CHECK(recipe.passes[0].pass == "rtn");
    CHECK(rtn.get_int("bits") == c.bits);
    CHECK(rtn.get_int("group_size") == 128);
    CHECK(rtn.get_bool("symmetric") == c.symmetric);
    CHECK(rtn.get_strings("targets") == Strings{"Linear"});
    CHECK(rtn.get_strings("ignore") == Strings{"lm_head"});
  }
}

TEST_CASE("a scheme mapping gives one pass per preset with its targets", "[unit]") {
  Recipe recipe =
      parse(modifier("GPTQModifier",
                     "      scheme:\n        W4A16: [\"re:.*self_attn.*\"]\n        W8A16: "
                     "\"re:.*mlp.*\"\n      actorder: null\n"));
  REQUIRE(recipe.passes.size() == 2);
  CHECK(recipe.passes[0].options.get_int("bits") == 4);
  CHECK(recipe.passes[0].options.get_strings("targets") == Strings{"re:.*self_attn.*"});
  CHECK(recipe.passes[1].options.get_int("bits") == 8);
  CHECK(recipe.passes[1].options.get_strings("targets") == Strings{"re:.*mlp.*"});
  CHECK_FALSE(recipe.passes[1].options.get_bool("act_order"));
  // llm-compressor finds its grids before the sweep.
  CHECK(recipe.passes[1].options.get_bool("static_groups"));
}

TEST_CASE("AWQ takes its grid from the following quantizer", "[unit]") {
  std::string file = std::string(PRESSO_TEST_DATA) + "/recipes/llmc-awq-gptq.yaml";
  Recipe recipe = load_recipe(file, test_schemas());
  REQUIRE(recipe.passes.size() == 2);
  const PassOptions& awq = recipe.passes[0].options;
  const PassOptions& gptq = recipe.passes[1].options;
  CHECK(recipe.passes[0].pass == "awq");
  CHECK(awq.get_strings("targets") == Strings{"Linear"});
  CHECK(awq.get_strings("ignore") == Strings{"lm_head"});
  CHECK(awq.get_int("bits") == 4);
  CHECK(awq.get_int("group_size") == 64);
  CHECK_FALSE(awq.get_bool("symmetric"));
  CHECK(awq.get_bool("mse"));
  CHECK(awq.get_string("duo_scaling") == "both");
  CHECK(awq.get_int("n_grid") == 10);
  CHECK_FALSE(awq.get_bool("clip"));
  CHECK(recipe.passes[1].pass == "gptq");
  CHECK(gptq.get_float("damp") == 0.05);
  CHECK(gptq.get_bool("act_order"));
  CHECK_FALSE(gptq.get_bool("static_groups"));  // actorder group: g_idx saved
  CHECK(gptq.get_int("group_size") == 64);
}

TEST_CASE("the older AWQModifier with a scheme splits into awq and rtn", "[unit]") {
  std::vector<std::string> warnings;
  Recipe recipe = parse(modifier("AWQModifier",
                                 "      ignore: [lm_head]\n      scheme: "
                                 "W4A16_ASYM\n      targets: [Linear]\n"
                                 "      duo_scaling: both\n"),
                        &warnings);
  REQUIRE(recipe.passes.size() == 2);
  CHECK(recipe.passes[0].pass == "awq");
  CHECK_FALSE(recipe.passes[0].options.get_bool("symmetric"));
  CHECK(recipe.passes[1].pass == "rtn");
  CHECK(recipe.passes[1].options.get_strings("ignore") == Strings{"lm_head"});
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("r.yaml:3: AWQModifier: older AWQModifier"));
}

TEST_CASE("the current AWQModifier with mappings scales for the QuantizationModifier after it",
          "[unit]") {
  Recipe recipe = parse(
      "quant_stage:\n  quant_modifiers:\n    AWQModifier:\n      duo_scaling: false\n"
      "      mappings:\n        - smooth_layer: re:.*input_layernorm$\n"
      "          balance_layers: [re:.*q_proj$, re:.*k_proj$, re:.*v_proj$]\n"
      "        - smooth_layer: re:.*post_attention_layernorm$\n"
      "          balance_layers: [re:.*gate_proj$, re:.*up_proj$]\n"
      "    QuantizationModifier:\n      ignore: [lm_head]\n      targets: [Linear]\n"
      "      scheme: W4A16_ASYM\n");
  REQUIRE(recipe.passes.size() == 2);
  const PassOptions& awq = recipe.passes[0].options;
  CHECK(recipe.passes[0].pass == "awq");
  CHECK(awq.get_string("duo_scaling") == "false");
  CHECK_FALSE(awq.get_bool("clip"));  // llm-compressor's AWQ has no clipping search
  CHECK(awq.get_int("bits") == 4);
  CHECK(awq.get_int("group_size") == 128);
  CHECK_FALSE(awq.get_bool("symmetric"));
  const std::vector<LayerMapping>& mappings = awq.get_mappings("mappings");
  REQUIRE(mappings.size() == 2);
  CHECK(mappings[0].smooth_layer == "re:.*input_layernorm$");
  CHECK(mappings[0].balance_layers == Strings{"re:.*q_proj$", "re:.*k_proj$", "re:.*v_proj$"});
  CHECK(recipe.passes[1].pass == "rtn");
  CHECK_FALSE(recipe.passes[1].options.get_bool("symmetric"));
}

TEST_CASE("config groups: strategies, observers and actorder", "[unit]") {
  auto group = [](const std::string& weights, const std::string& extra = "") {
    return modifier("GPTQModifier", extra +
                                        "      config_groups:\n        g:\n          targets: "
                                        "[Linear]\n          weights: {" +
                                        weights + "}\n");
  };
  Recipe channel = parse(group("num_bits: 4, strategy: channel, observer: memoryless_mse"));
  CHECK(channel.passes[0].options.get_int("group_size") == -1);
  CHECK(channel.passes[0].options.get_bool("mse"));
  Recipe inferred = parse(group("group_size: 32"));
  CHECK(inferred.passes[0].options.get_int("bits") == 8);  // QuantizationArgs default
  CHECK(inferred.passes[0].options.get_int("group_size") == 32);
  Recipe override_mse =
      parse(group("num_bits: 4, group_size: 32", "      observer: {weights: mse}\n"));
  CHECK(override_mse.passes[0].options.get_bool("mse"));
  Recipe weight_order = parse(group("num_bits: 4, group_size: 32, actorder: weight"));
  CHECK(weight_order.passes[0].options.get_bool("act_order"));
  CHECK(weight_order.passes[0].options.get_bool("static_groups"));

  std::vector<std::string> warnings;
  Recipe fallback =
      parse(group("num_bits: 4, strategy: channel", "      actorder: group\n"), &warnings);
  CHECK_FALSE(fallback.passes[0].options.get_bool("act_order"));
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("falls back to no activation ordering"));

  CHECK_THAT(
      error_of(group("num_bits: 4, group_size: 32, actorder: group", "      actorder: weight\n")),
      Catch::Contains("r.yaml:4: GPTQModifier: actorder 'weight' differs from the config "
                      "group's 'group'"));
}

TEST_CASE("SparseGPT and Wanda modifiers become pruning passes", "[unit]") {
  // The sample of src/llmcompressor/modifiers/pruning/sparsegpt/base.py, then Wanda.
  Recipe recipe = parse(
      "test_stage:\n  obcq_modifiers:\n    SparseGPTModifier:\n      sparsity: 0.5\n"
      "      mask_structure: \"2:4\"\n      dampening_frac: 0.001\n      block_size: 128\n"
      "      targets: ['Linear']\n      ignore: ['re:.*lm_head']\n"
      "  prune_modifiers:\n    WandaPruningModifier: {sparsity: 0.3}\n");
  REQUIRE(recipe.passes.size() == 2);
  const PassOptions& sparsegpt = recipe.passes[0].options;
  CHECK(sparsegpt.get_float("sparsity") == 0.5);
  CHECK(sparsegpt.get_string("pattern") == "2:4");
  CHECK(sparsegpt.get_float("damp") == 0.001);
  CHECK(sparsegpt.get_strings("ignore") == Strings{"re:.*lm_head"});
  CHECK(recipe.passes[1].pass == "wanda");
  CHECK(recipe.passes[1].options.get_string("pattern") == "unstructured");
  SparsityPattern pattern = parse_sparsity_pattern(sparsegpt.get_string("pattern"));
  CHECK(pattern.n == 2);
  CHECK(pattern.m == 4);
}

TEST_CASE("an N:M mask_structure becomes our pattern, its sparsity N/M", "[unit]") {
  std::vector<std::string> warnings;
  Recipe recipe = parse(
      modifier("WandaPruningModifier", "      sparsity: 0.7\n      mask_structure: \"1:4\"\n"),
      &warnings);
  const PassOptions& wanda = recipe.passes[0].options;
  CHECK(wanda.get_string("pattern") == "1:4");
  CHECK_FALSE(wanda.has("sparsity"));  // ignored upstream with an N:M mask
  CHECK(pruned_fraction(wanda) == 0.25);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] ==
        "r.yaml:4: WandaPruningModifier: sparsity 0.7 has no effect with mask_structure 1:4, "
        "which prunes 1 of every 4, as in llm-compressor");
  Recipe unstructured = parse(modifier("SparseGPTModifier", "      sparsity: 0.4\n"));
  CHECK(unstructured.passes[0].options.get_string("pattern") == "unstructured");
  CHECK(pruned_fraction(unstructured.passes[0].options) == 0.4);
}

TEST_CASE("WandaPruningModifier's OWL keys become the wanda pass's OWL options", "[unit]") {
  // sequential_update is deprecated upstream (forced true: layer by layer); accepted.
  Recipe recipe = parse(modifier("WandaPruningModifier",
                                 "      sparsity: 0.6\n      sparsity_profile: OWL\n"
                                 "      owl_m: 7\n      owl_lmbda: 0.1\n"
                                 "      sequential_update: false\n"));
  const PassOptions& wanda = recipe.passes[0].options;
  CHECK(recipe.passes[0].pass == "wanda");
  CHECK(wanda.get_string("sparsity_profile") == "owl");
  CHECK(wanda.get_float("owl_threshold_m") == 7.0);
  CHECK(wanda.get_float("owl_lambda") == 0.1);
  CHECK_FALSE(wanda.get_bool("true_sequential"));
  Recipe plain = parse(modifier("WandaPruningModifier", "      sparsity: 0.5\n"));
  CHECK(plain.passes[0].options.get_string("sparsity_profile") == "uniform");
  CHECK_FALSE(plain.passes[0].options.has("owl_lambda"));
}

TEST_CASE("MagnitudePruningModifier is read one-shot at its final sparsity", "[unit]") {
  std::vector<std::string> warnings;
  Recipe recipe = parse(
      "pruning_stage:\n  pruning_modifiers:\n    MagnitudePruningModifier:\n"
      "      targets: [\"re:.*mlp.*\"]\n      init_sparsity: 0.05\n      final_sparsity: 0.6\n"
      "      start: 0\n      end: 5\n      update: 1\n      update_scheduler: cubic\n"
      "      mask_structure: unstructured\n      leave_enabled: false\n"
      "      apply_globally: false\n",
      &warnings);
  REQUIRE(recipe.passes.size() == 1);
  const PassEntry& magnitude = recipe.passes[0];
  CHECK(magnitude.pass == "magnitude");
  CHECK(magnitude.where.label == "MagnitudePruningModifier");
  CHECK(magnitude.options.get_strings("targets") == Strings{"re:.*mlp.*"});
  CHECK(magnitude.options.get_strings("ignore").empty());
  CHECK(magnitude.options.get_float("sparsity") == 0.6);
  CHECK(magnitude.options.get_string("pattern") == "unstructured");
  CHECK(magnitude.options.get_string("scope") == "layer");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] ==
        "r.yaml:3: MagnitudePruningModifier: init_sparsity, start, end, update, "
        "update_scheduler: presso prunes once, to final_sparsity; the pruning schedule has no "
        "effect");

  // Without start, upstream never runs it.
  warnings.clear();
  parse(modifier("MagnitudePruningModifier",
                 "      targets: Linear\n      init_sparsity: 0.5\n      final_sparsity: 0.5\n"),
        &warnings);
  const Strings expected = {
      "r.yaml:3: MagnitudePruningModifier: start is not set, so llm-compressor never starts this "
      "modifier and prunes nothing; presso prunes to final_sparsity",
      "r.yaml:3: MagnitudePruningModifier: init_sparsity: presso prunes once, to final_sparsity; "
      "the pruning schedule has no effect"};
  CHECK(warnings == expected);
}

TEST_CASE("llm-compressor recipe problems name file, line and key", "[unit]") {
  const std::string group_head =
      "      config_groups:\n        group_0:\n          targets: [Linear]\n";
  struct Case {
    const char* what;
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"unknown key", modifier("GPTQModifier", "      scheme: W4A16\n      blocksize: 64\n"),
       "r.yaml:5: GPTQModifier: unknown key 'blocksize' (did you mean 'block_size'?) "
       "(llm-compressor forbids extra inputs)"},
      {"activation quantization",
       modifier("GPTQModifier", group_head + "          weights: {num_bits: 4, group_size: 128}\n"
                                             "          input_activations: {num_bits: 8}\n"),
       "r.yaml:8: GPTQModifier: config_groups.group_0.input_activations: activation "
       "quantization is not supported; presso does weight-only integer quantization"},
      {"float weights",
       modifier("QuantizationModifier",
                group_head + "          weights: {num_bits: 8, type: float, group_size: 128}\n"),
       "r.yaml:7: QuantizationModifier: config_groups.group_0.weights.type: type float is not "
       "supported"},
      {"tensor strategy",
       modifier("QuantizationModifier",
                group_head + "          weights: {num_bits: 8, strategy: tensor}\n"),
       "config_groups.group_0.weights.strategy: strategy tensor is not supported"},
      {"no grouping",
       modifier("QuantizationModifier", group_head + "          weights:\n"
                                                     "            num_bits: 4\n"),
       "r.yaml:7: QuantizationModifier: config_groups.group_0.weights: one scale per tensor"},
      {"channel with a group size",
       modifier("QuantizationModifier",
                group_head + "          weights: {strategy: channel, group_size: 64}\n"),
       "config_groups.group_0.weights.group_size: a group_size > 0 needs strategy group"},
      {"num_bits out of range",
       modifier("GPTQModifier", group_head + "          weights:\n            num_bits: 9\n"
                                             "            group_size: 128\n"),
       "r.yaml:8: GPTQModifier: config_groups.group_0.weights.num_bits: 9 is out of range [2, 8]"},
      {"unknown weights key",
       modifier("GPTQModifier", group_head + "          weights: {num_bit: 4, group_size: 8}\n"),
       "unknown key 'config_groups.group_0.weights.num_bit' (did you mean 'num_bits'?)"},
      {"kv cache",
       modifier("QuantizationModifier",
                "      scheme: W4A16\n      "
                "kv_cache_scheme: {num_bits: 8}\n"),
       "r.yaml:5: QuantizationModifier: kv_cache_scheme: KV-cache quantization is not supported"},
      {"activation preset", modifier("QuantizationModifier", "      scheme: W8A8\n"),
       "r.yaml:4: QuantizationModifier: scheme: preset 'W8A8' quantizes activations"},
      {"unknown preset", modifier("QuantizationModifier", "      scheme: W4A61\n"),
       "scheme: unknown preset 'W4A61'"},
      {"scheme and groups",
       modifier("QuantizationModifier",
                "      scheme: W4A16\n" + group_head + "          weights: {group_size: 128}\n"),
       "r.yaml:4: QuantizationModifier: give either `scheme` or `config_groups`, not both"},
      {"no scheme", modifier("GPTQModifier", "      block_size: 64\n"),
       "r.yaml:3: GPTQModifier: needs `scheme` or `config_groups`"},
      {"awq alone", modifier("AWQModifier", "      n_grid: 10\n"),
       "r.yaml:3: AWQModifier: needs a later QuantizationModifier or GPTQModifier"},
      {"unknown modifier", modifier("SmoothQuantModifier", "      smoothing_strength: 0.8\n"),
       "r.yaml:3: unknown modifier 'SmoothQuantModifier' (available: AWQModifier, GPTQModifier, "
       "MagnitudePruningModifier, QuantizationModifier, SparseGPTModifier, "
       "WandaPruningModifier)"},
      {"owl", modifier("SparseGPTModifier", "      sparsity: 0.5\n      sparsity_profile: owl\n"),
       "r.yaml:5: SparseGPTModifier: sparsity_profile: OWL layer-wise sparsity is supported for "
       "WandaPruningModifier only"},
      {"owl incomplete",
       modifier("WandaPruningModifier", "      sparsity: 0.5\n      sparsity_profile: owl\n"
                                        "      owl_m: 5\n"),
       "r.yaml:5: WandaPruningModifier: OWL needs all of sparsity_profile: owl, owl_m and "
       "owl_lmbda, or none of them"},
      {"owl profile",
       modifier("WandaPruningModifier", "      sparsity: 0.5\n      sparsity_profile: flat\n"
                                        "      owl_m: 5\n      owl_lmbda: 0.08\n"),
       "r.yaml:5: WandaPruningModifier: sparsity_profile: 'flat' is not a profile"},
      {"owl with N:M",
       modifier("WandaPruningModifier", "      mask_structure: \"2:4\"\n"
                                        "      sparsity_profile: owl\n      owl_m: 5\n"
                                        "      owl_lmbda: 0.08\n"),
       "sparsity_profile owl gives each layer its own sparsity, which pattern 2:4"},
      {"pruning key",
       modifier("WandaPruningModifier", "      sparsity: 0.5\n      block_size: 8\n"),
       "r.yaml:5: WandaPruningModifier: unknown key 'block_size'"},
      {"mask form",
       modifier("SparseGPTModifier", "      sparsity: 0.5\n      mask_structure: 2-4\n"),
       "r.yaml:5: SparseGPTModifier: mask_structure: '2-4' is not of the form \"N:M\" (\"0:0\" = "
       "unstructured)"},
      {"mask pruning all", modifier("WandaPruningModifier", "      mask_structure: \"4:4\"\n"),
       "r.yaml:4: WandaPruningModifier: mask_structure: '4:4' needs 0 < N < M (or \"0:0\" for "
       "unstructured)"},
      {"magnitude without ignore",
       modifier("MagnitudePruningModifier",
                "      targets: Linear\n      init_sparsity: 0\n      final_sparsity: 0.5\n"
                "      ignore: [lm_head]\n"),
       "r.yaml:7: MagnitudePruningModifier: unknown key 'ignore' (llm-compressor forbids extra "
       "inputs)"},
      {"magnitude required keys",
       modifier("MagnitudePruningModifier", "      targets: Linear\n      init_sparsity: 0\n"),
       "r.yaml:3: MagnitudePruningModifier: missing required key 'final_sparsity'"},
      {"magnitude N:M",
       modifier("MagnitudePruningModifier",
                "      targets: Linear\n      init_sparsity: 0\n      final_sparsity: 0.5\n"
                "      mask_structure: \"2:4\"\n"),
       "r.yaml:7: MagnitudePruningModifier: mask_structure: '2:4': llm-compressor's "
       "MagnitudePruningModifier has no N:M masks"},
      {"magnitude blocks",
       modifier("MagnitudePruningModifier",
                "      targets: Linear\n      init_sparsity: 0\n      final_sparsity: 0.5\n"
                "      mask_structure: \"block_4,4\"\n"),
       "r.yaml:7: MagnitudePruningModifier: mask_structure: 'block_4,4' is not supported"},
      {"magnitude globally",
       modifier("MagnitudePruningModifier",
                "      targets: Linear\n      init_sparsity: 0\n      final_sparsity: 0.5\n"
                "      apply_globally: true\n"),
       "r.yaml:7: MagnitudePruningModifier: apply_globally: only false is supported"},
      {"magnitude sparsity of one",
       modifier("MagnitudePruningModifier",
                "      targets: Linear\n      init_sparsity: 0\n      final_sparsity: 1.0\n"),
       "r.yaml:6: MagnitudePruningModifier: final_sparsity: 1 would prune every weight"},
      {"stage without groups", "quant_stage:\n  GPTQModifier: {scheme: W4A16}\n",
       "r.yaml:2: quant_stage: unknown key 'GPTQModifier' (a stage holds `*_modifiers` groups)"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    CHECK_THAT(error_of(c.text), Catch::Contains(c.expected));
  }
}

TEST_CASE("only registered passes can be used", "[unit]") {
  std::vector<PassSchema> only_rtn = {presso::test::rtn_schema()};
  std::string error;
  try {
    parse_recipe(modifier("GPTQModifier", "      scheme: W4A16\n"), "r.yaml", only_rtn);
  } catch (const UserError& e) {
    error = e.what();
  }
  CHECK(error == "r.yaml:3: unknown modifier 'GPTQModifier' (available: QuantizationModifier)");
}

TEST_CASE("a modifier becomes the pass whose schema lists it", "[unit]") {
  using presso::test::awq_schema;
  using presso::test::gptq_schema;
  PassSchema nearest = presso::test::rtn_schema();
  nearest.name = "nearest";
  Recipe recipe = parse_recipe(modifier("QuantizationModifier", "      scheme: W4A16\n"), "r.yaml",
                               {gptq_schema(), nearest});
  CHECK(recipe.passes[0].pass == "nearest");

  // AWQ's grid comes from the quantizing modifiers of the passes given, named in its message.
  auto error = [](const std::string& text, const std::vector<PassSchema>& schemas) {
    try {
      parse_recipe(text, "r.yaml", schemas);
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error(modifier("AWQModifier", "      n_grid: 4\n"), {awq_schema(), gptq_schema()}) ==
        "r.yaml:3: AWQModifier: needs a later GPTQModifier: it takes its weight grid from the "
        "quantizing modifier that follows it");
  // The older AWQModifier's quantization keys need QuantizationModifier's pass.
  CHECK_THAT(error(modifier("AWQModifier", "      scheme: W4A16\n"), {awq_schema(), gptq_schema()}),
             Catch::StartsWith("r.yaml:3: AWQModifier: its keys are read as a "
                               "QuantizationModifier, but no registered pass translates "
                               "QuantizationModifier\n"));

  PassSchema twice = gptq_schema();
  twice.name = "gptq2";
  CHECK_THROWS_AS(parse_recipe(modifier("GPTQModifier", "      scheme: W4A16\n"), "r.yaml",
                               {gptq_schema(), twice}),
                  InternalError);
}

TEST_CASE("translated recipes print and parse back equal", "[unit]") {
  const std::vector<std::string> recipes = {
      modifier("GPTQModifier", "      scheme: W4A16_ASYM\n      ignore: [lm_head]\n"),
      modifier("QuantizationModifier", "      scheme: {W4A16: [\"re:.*q_proj$\"]}\n"),
      "s_stage:\n  m_modifiers:\n    AWQModifier: {mappings: [{smooth_layer: \"re:.*norm$\", "
      "balance_layers: [\"re:.*q_proj$\"], activation_hook_target: null}]}\n"
      "    GPTQModifier: {scheme: W8A16, dampening_frac: null}\n",
      "s_stage:\n  m_modifiers:\n    SparseGPTModifier: {sparsity: 0.7, mask_structure: "
      "\"0:0\"}\n",
      "s_stage:\n  m_modifiers:\n    WandaPruningModifier: {sparsity: 0.5, mask_structure: "
      "\"2:4\"}\n    MagnitudePruningModifier: {targets: Linear, init_sparsity: 0.1, "
      "final_sparsity: 0.3}\n    QuantizationModifier: {scheme: W4A16}\n",
      "s_stage:\n  m_modifiers:\n    WandaPruningModifier: {sparsity: 0.5, sparsity_profile: "
      "owl, owl_m: 5, owl_lmbda: 0.08}\n    GPTQModifier: {scheme: W4A16}\n",
  };
  for (const auto& text : recipes) {
    INFO(text);
    Recipe first = parse(text);
    CHECK(parse(print_recipe(first)) == first);
  }
}

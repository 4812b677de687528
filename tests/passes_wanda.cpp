// Wanda end to end: on every fixture model it beats magnitude pruning at 50 % and at 2:4; with
// OWL the blocks' sparsities average to the target and each linear is pruned to its block's; an
// llm-compressor stage of Wanda then GPTQ keeps the mask through quantization; bad options are
// recipe errors before any work.
#include "tests/catch_torch.h"

#include <filesystem>
#include <map>
#include <numeric>

#include "lib/common/errors.h"
#include "lib/model/model.h"
#include "lib/recipe/recipe.h"
#include "lib/sparse/mask.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

// The protocol calibrates on 128 windows x 512 tokens (docs/benchmarks.md has those
// numbers); 32 windows keep this test to a few minutes on two cores.
constexpr int64_t kCalibWindows = 32;
constexpr int64_t kEvalWindows = 16;

// `calib` empty: no calibration (magnitude needs none). Returns the report.
nlohmann::json compress(const TempDir& dir, const fs::path& model, const std::string& name,
                        const std::string& pass, const std::string& options,
                        const std::string& calib) {
  const std::string recipe = presso::test::write_recipe(dir, name, pass, options);
  return compress_model(presso::test::compress_options(model.string(), recipe, calib,
                                                       dir.file(name), kCalibWindows, 512),
                        pass_registry())
      .to_json();
}

std::map<std::string, int> block_of_linears(const fs::path& model) {
  std::map<std::string, int> blocks;
  for (const auto& linear : Model::open(model.string()).linears())
    blocks[linear.name] = linear.block;
  return blocks;
}

}  // namespace

TEST_CASE("wanda beats magnitude pruning at 50 % and at 2:4 on the fixture models", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const std::string calib = (*fx / "text" / "calib.txt").string();
  const std::string eval = (*fx / "text" / "eval.txt").string();
  const std::vector<std::pair<std::string, std::string>> structures = {
      {"50", "sparsity: 0.5"}, {"2of4", "pattern: \"2:4\""}};
  for (const auto& model : presso::test::checkpoint_dirs(*fx, "models")) {
    TempDir dir("wanda");
    for (const auto& [name, options] : structures) {
      INFO(model.filename().string() + " " + name);
      compress(dir, model, "wanda-" + name, "wanda", options, calib);
      compress(dir, model, "magnitude-" + name, "magnitude", options, "");
      const double wanda = presso::test::perplexity(dir.file("wanda-" + name), eval, kEvalWindows);
      const double magnitude =
          presso::test::perplexity(dir.file("magnitude-" + name), eval, kEvalWindows);
      std::cout << model.filename().string() << " " << name << ": ppl wanda " << wanda
                << ", magnitude " << magnitude << "\n";
      CHECK(wanda < magnitude);
    }
  }
}

TEST_CASE("wanda with owl prunes each block to its own sparsity, averaging to the target",
          "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const std::string calib = (*fx / "text" / "calib.txt").string();
  const std::string eval = (*fx / "text" / "eval.txt").string();
  for (const auto& model : presso::test::checkpoint_dirs(*fx, "models")) {
    INFO(model.filename().string());
    TempDir dir("wanda_owl");
    const nlohmann::json report = compress(
        dir, model, "owl", "wanda",
        "sparsity: 0.5, sparsity_profile: owl, owl_threshold_m: 5, owl_lambda: 0.08", calib);
    const std::map<std::string, int> blocks = block_of_linears(model);
    std::map<int, double> block_sparsity;
    for (const auto& layer : report["layers"]) {
      const std::string name = layer["name"];
      const double owl = layer["metrics"]["owl_sparsity"];
      const int block = blocks.at(name);
      // One sparsity per block, each row pruned to it exactly.
      if (block_sparsity.count(block)) CHECK(block_sparsity[block] == owl);
      block_sparsity[block] = owl;
      const int64_t in = layer["shape"][1];
      CHECK(layer["sparsity"].get<double>() ==
            Approx(static_cast<double>(pruned_count(in, owl)) / in).margin(1e-12));
    }
    double sum = 0, low = 1, high = 0;
    std::cout << model.filename().string() << " owl block sparsities:";
    for (const auto& [block, sparsity] : block_sparsity) {
      std::cout << " " << sparsity;
      sum += sparsity;
      low = std::min(low, sparsity);
      high = std::max(high, sparsity);
    }
    const double ppl = presso::test::perplexity(dir.file("owl"), eval, kEvalWindows);
    std::cout << "; ppl " << ppl << "\n";
    CHECK(block_sparsity.size() == static_cast<size_t>(Model::open(model.string()).num_blocks()));
    CHECK(sum / block_sparsity.size() == Approx(0.5).margin(1e-12));
    // λ = 0.08 spreads them over at most ±0.16, and the extremes differ.
    CHECK(high - low == Approx(0.16).margin(1e-12));
    CHECK(std::isfinite(ppl));
  }
}

TEST_CASE("an llm-compressor stage of wanda then gptq keeps the mask through quantization",
          "[unit]") {
  TempDir dir("wanda_gptq");
  const std::string model = (presso::test::test_data() / "sotu-llama-16m").string();
  const std::string calib = (presso::test::test_data() / "calib.txt").string();
  const std::string wanda = "    WandaPruningModifier: {sparsity: 0.5, ignore: [lm_head]}\n";
  const std::string gptq = "    GPTQModifier: {scheme: W4A16, ignore: [lm_head]}\n";
  const std::string alone =
      dir.write("alone.yaml", "sparsity_stage:\n  sparsity_modifiers:\n" + wanda);
  const std::string both =
      dir.write("both.yaml", "sparsity_stage:\n  sparsity_modifiers:\n" + wanda + gptq);
  compress_model(presso::test::compress_options(model, alone, calib, dir.file("alone"), 4, 64),
                 pass_registry());
  const nlohmann::json report =
      compress_model(presso::test::compress_options(model, both, calib, dir.file("both"), 4, 64),
                     pass_registry())
          .to_json();
  REQUIRE(report["layers"].size() > 0);
  for (const auto& layer : report["layers"]) {
    CHECK(layer["passes"] == nlohmann::json({"wanda", "gptq"}));
    CHECK(layer["sparsity"].get<double>() == 0.5);
    CHECK(layer["scheme"]["bits"] == 4);
  }
  // As stored: at least half of every row zero; block 0 (the same inputs in both runs) keeps
  // exactly the zeros Wanda chose alone.
  const Model pruned = Model::open(dir.file("alone"));
  const Model quantized = Model::open(dir.file("both"));
  for (int b = 0; b < quantized.num_blocks(); ++b) {
    const DecoderBlock block = quantized.load_block(b);
    const DecoderBlock reference = pruned.load_block(b);
    for (size_t i = 0; i < block.linears.size(); ++i) {
      const Linear& linear = block.linears[i];
      INFO(linear.name);
      const torch::Tensor zeros = linear.weight == 0;
      CHECK(zeros.sum(1).ge(linear.weight.size(1) / 2).all().item<bool>());
      if (b > 0) continue;
      const torch::Tensor pruned_zeros = reference.linears[i].weight == 0;
      CHECK(pruned_zeros.logical_and(zeros.logical_not()).sum().item<int64_t>() == 0);
    }
  }
}

TEST_CASE("wanda's true_sequential prunes later groups on the inputs of the pruned ones",
          "[unit]") {
  TempDir dir("wanda_sequential");
  const std::string model = (presso::test::test_data() / "sotu-llama-16m").string();
  const std::string calib = (presso::test::test_data() / "calib.txt").string();
  for (const char* flag : {"false", "true"}) {
    const std::string recipe = presso::test::write_recipe(
        dir, flag, "wanda", std::string("sparsity: 0.5, true_sequential: ") + flag);
    compress_model(presso::test::compress_options(model, recipe, calib, dir.file(flag), 4, 64),
                   pass_registry());
  }
  // Block 0's first group (q/k/v) sees the same inputs either way; the groups after it do not.
  const DecoderBlock once = Model::open(dir.file("false")).load_block(0);
  const DecoderBlock sequential = Model::open(dir.file("true")).load_block(0);
  int64_t differing_later = 0;
  for (size_t i = 0; i < once.linears.size(); ++i) {
    const std::string& name = once.linears[i].name;
    const bool same = torch::equal(once.linears[i].weight, sequential.linears[i].weight);
    if (name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos ||
        name.find("v_proj") != std::string::npos) {
      CHECK(same);
    } else if (!same) {
      ++differing_later;
    }
    const torch::Tensor& weight = sequential.linears[i].weight;
    CHECK((weight == 0).sum(1).ge(weight.size(1) / 2).all().item<bool>());
  }
  CHECK(differing_later > 0);
}

TEST_CASE("wanda's bad option combinations are recipe errors", "[unit]") {
  const std::vector<PassSchema> schemas = registry_schemas(pass_registry());
  auto error_of = [&](const std::string& options) -> std::string {
    try {
      parse_recipe("passes:\n  - wanda: {" + options + "}\n", "r.yaml", schemas);
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(error_of("sparsity: 0.5, sparsity_profile: owl") == "");
  CHECK_THAT(error_of("sparsity: 0.5, owl_lambda: 0.1"),
             Catch::Contains("owl_lambda has no effect without sparsity_profile: owl"));
  CHECK_THAT(error_of("pattern: \"2:4\", sparsity_profile: owl"),
             Catch::Contains("which pattern 2:4 (N/M everywhere) cannot follow"));
  CHECK_THAT(error_of("sparsity: 0.9, sparsity_profile: owl"),
             Catch::Contains("owl_lambda 0.08 lets a layer's sparsity leave [0, 1)") &&
                 Catch::Contains("use at most 0.05"));
  CHECK_THAT(error_of("sparsity: 0.5, sparsity_profile: owl, owl_threshold_m: 0"),
             Catch::Contains("owl_threshold_m"));

  // A pattern whose M does not divide a width is refused before any work.
  TempDir dir("wanda_shape");
  const std::string recipe = presso::test::write_recipe(dir, "r", "wanda", "pattern: \"1:7\"");
  const std::string model = (presso::test::test_data() / "sotu-llama-16m").string();
  const std::string calib = (presso::test::test_data() / "calib.txt").string();
  CHECK_THROWS_WITH(
      compress_model(presso::test::compress_options(model, recipe, calib, dir.file("out"), 4, 64),
                     pass_registry()),
      Catch::Contains("pattern 1:7 needs the input width to be a multiple of 7"));
}

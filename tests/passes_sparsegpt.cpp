// SparseGPT end to end: on every fixture model it must beat magnitude pruning at 50 % and at 2:4,
// and its joint prune + int4 sweep must beat magnitude followed by RTN; an llm-compressor stage of
// SparseGPTModifier then GPTQModifier keeps the mask through quantization.
#include "tests/catch_torch.h"

#include <filesystem>

#include "lib/common/files.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

// As tests/passes_gptq.cpp: a reduced form of the issue's protocol (128 windows), enough to
// separate the methods by a wide margin.
constexpr int64_t kCalibWindows = 32;
constexpr int64_t kEvalWindows = 16;

struct Comparison {
  std::string name;
  std::string sparsegpt;  // the recipe's passes
  std::string baseline;
};

const std::vector<Comparison> kComparisons = {
    {"50%", "  - sparsegpt: {sparsity: 0.5}\n", "  - magnitude: {sparsity: 0.5}\n"},
    {"2:4", "  - sparsegpt: {pattern: \"2:4\"}\n", "  - magnitude: {pattern: \"2:4\"}\n"},
    {"50% + w4g128",
     "  - sparsegpt: {sparsity: 0.5, bits: 4, group_size: 128, symmetric: false}\n",
     "  - magnitude: {sparsity: 0.5}\n  - rtn: {bits: 4, group_size: 128, symmetric: false}\n"},
};

}  // namespace

TEST_CASE("sparsegpt beats magnitude pruning on the fixture models, alone and with int4",
          "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const std::string calib = (*fx / "text" / "calib.txt").string();
  const std::string eval = (*fx / "text" / "eval.txt").string();
  for (const auto& model : presso::test::checkpoint_dirs(*fx, "models")) {
    TempDir dir("sparsegpt");
    int index = 0;
    for (const auto& comparison : kComparisons) {
      INFO(model.filename().string() + " " + comparison.name);
      const std::string tag = std::to_string(index++);
      const auto run = [&](const std::string& name, const std::string& passes) {
        const std::string recipe = dir.write(name + ".yaml", "passes:\n" + passes);
        return presso::test::compress_and_evaluate(dir, model.string(), recipe, name, calib,
                                                   kCalibWindows, eval, kEvalWindows);
      };
      const double sparsegpt = run("sparsegpt-" + tag, comparison.sparsegpt);
      const double baseline = run("baseline-" + tag, comparison.baseline);
      std::cout << model.filename().string() << " " << comparison.name << ": ppl sparsegpt "
                << sparsegpt << ", magnitude " << baseline << "\n";
      CHECK(sparsegpt < baseline);
    }
  }
}

TEST_CASE("an llm-compressor SparseGPTModifier then GPTQModifier stage keeps the 2:4 mask", "[e2e]") {
  TempDir dir("sparsegpt-llmc");
  const std::string model = (presso::test::test_data() / "sotu-llama-16m").string();
  const std::string calib = (presso::test::test_data() / "calib.txt").string();
  const std::string recipe = dir.write("recipe.yaml", R"(oneshot_stage:
  pruning_modifiers:
    SparseGPTModifier:
      sparsity: 0.5
      mask_structure: "2:4"
      targets: ["Linear"]
      ignore: ["re:.*lm_head"]
  quantization_modifiers:
    GPTQModifier:
      targets: ["Linear"]
      ignore: ["lm_head"]
      scheme: W4A16_ASYM
)");
  const nlohmann::json report =
      compress_model(presso::test::compress_options(model, recipe, calib, dir.file("out"), 8, 128),
                     pass_registry())
          .to_json();
  REQUIRE(report["layers"].size() > 0);
  for (const auto& layer : report["layers"]) {
    INFO(layer["name"].get<std::string>());
    CHECK(layer["passes"] == nlohmann::json::array({"sparsegpt", "gptq"}));
    CHECK(layer["sparsity"].get<double>() == Approx(0.5));
    CHECK(layer["scheme"]["bits"] == 4);
  }
  // The written checkpoint declares the 2:4 structure beside the int4 scheme.
  const nlohmann::json config =
      nlohmann::json::parse(read_file_bytes(dir.file("out") + "/config.json"));
  const auto& quantization = config["quantization_config"];
  CHECK(quantization["sparsity_config"]["sparsity_structure"] == "2:4");
}

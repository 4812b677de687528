// Every recipe shipped in configs/ runs on the shipped model and keeps it usable, so none can rot.
#include <algorithm>
#include <filesystem>

#include "tests/catch_torch.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;

TEST_CASE("every shipped recipe compresses the default model and keeps it usable", "[e2e]") {
  const fs::path configs = presso::test::test_data() / ".." / ".." / "configs";
  const std::string model = (presso::test::test_data() / "sotu-llama-16m").string();
  const std::string calib = (presso::test::test_data() / "calib.txt").string();
  const std::string eval = (presso::test::test_data() / "eval.txt").string();
  std::vector<fs::path> recipes;
  for (const auto& entry : fs::directory_iterator(configs)) {
    if (entry.path().extension() == ".yaml") recipes.push_back(entry.path());
  }
  std::sort(recipes.begin(), recipes.end());
  REQUIRE(recipes.size() >= 5);
  const double base = presso::test::perplexity(model, eval, 4);
  for (const auto& recipe : recipes) {
    INFO(recipe.filename().string());
    presso::test::TempDir dir("configs");
    const auto report = compress_model(presso::test::compress_options(model, recipe.string(), calib,
                                                                      dir.file("out"), 16, 256),
                                       pass_registry())
                            .to_json();
    int min_bits = 16;
    bool pruned = false;
    for (const auto& layer : report["layers"]) {
      if (!layer["scheme"].is_null())
        min_bits = std::min(min_bits, layer["scheme"]["bits"].get<int>());
      pruned = pruned || layer.contains("sparsity");
    }
    // With the adapter a lowrank pass wrote, as it is meant to be served.
    const std::string adapter = dir.file("out") + "/adapter";
    const double ppl =
        presso::test::perplexity(dir.file("out"), eval, 4, 512, fs::exists(adapter) ? adapter : "");
    std::cout << recipe.filename().string() << ": ppl " << base << " -> " << ppl << "\n";
    CHECK(std::isfinite(ppl));
    // Half the weights pruned (magnitude, no weight update) costs more than 4-bit quantization.
    CHECK(ppl < base * (min_bits <= 3 ? 3.0 : pruned ? 1.6 : 1.35));
  }
}

// On every fixture checkpoint (each family, tiny and trained): a module run computes exactly
// what the block computes inside it, and folding a scale into each of the family's scale groups
// leaves the block's function unchanged — what AWQ will rely on.
#include <filesystem>
#include <random>

#include "lib/model/model.h"
#include "tests/catch_torch.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

class Capture : public InputObserver {
 public:
  void observe(const torch::Tensor& input) override {
    if (!first.defined()) first = input.clone();
  }
  torch::Tensor first;  // the first batch only
};

struct Findings {
  int blocks = 0;
  double module_mismatch = 0;  // largest relative difference of any linear's input
  double fold_change = 0;      // largest relative change of the block output after all folds
  int folds = 0;
};

double relative(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item<double>();
}

class FamilyPass : public Pass {
 public:
  explicit FamilyPass(Findings* found) : found_(found) {}
  bool needs_calibration() const override { return true; }

  void run(PassContext& context) override {
    DecoderBlock& block = context.block();
    const FamilySpec& family = context.family();
    ++found_->blocks;
    // Every linear's input in a run of the whole block.
    std::map<std::string, Capture> in_block;
    ObserverMap observers;
    for (const auto& linear : block.linears) observers[linear.name] = &in_block[linear.name];
    context.observe(observers);
    const torch::Tensor x = context.calibration_batch(0);
    const torch::Tensor before = context.run_module("", x);

    // Each module, run on its first linear's input, feeds its linears what the block fed them.
    for (const auto& module : family.modules) {
      std::map<std::string, Capture> in_module;
      ObserverMap module_observers;
      for (const auto& relative_name : module.linears) {
        module_observers[block.prefix + relative_name] = &in_module[block.prefix + relative_name];
      }
      context.run_module(module.name, in_block.at(block.prefix + module.linears.front()).first,
                         module_observers);
      for (const auto& relative_name : module.linears) {
        const std::string name = block.prefix + relative_name;
        found_->module_mismatch = std::max(
            found_->module_mismatch, relative(in_module.at(name).first, in_block.at(name).first));
      }
    }

    // Every scale group folded with a random scale: the block computes the same function.
    std::mt19937 rng(static_cast<unsigned>(block.index));
    std::uniform_real_distribution<float> u(0.5f, 2.0f);
    for (const auto& group : family.scale_groups) {
      const int64_t channels = block.linear(group.consumers.front()).weight.size(1);
      std::vector<float> values(static_cast<size_t>(channels));
      for (auto& v : values) v = u(rng);
      context.fold_scale(group.producer, group.consumers, torch::tensor(values));
      ++found_->folds;
    }
    found_->fold_change =
        std::max(found_->fold_change, relative(context.run_module("", x), before));
  }

 private:
  Findings* found_;
};

}  // namespace

TEST_CASE("module runs match the block and scale folds keep its function, in every family",
          "[golden]") {
  auto fixtures = presso::test::fixtures_or_skip();
  if (!fixtures) return;
  for (const auto& model_dir : presso::test::all_checkpoint_dirs(*fixtures)) {
    INFO(model_dir.filename().string());
    TempDir dir("family_modules");
    // Pre-tokenized calibration: tiny checkpoints have no tokenizer.
    const int64_t vocab = Model::open(model_dir.string()).config().vocab_size;
    std::mt19937 rng(0);
    std::string ids = "[";
    for (int i = 0; i < 400; ++i) ids += (i ? "," : "") + std::to_string(rng() % vocab);
    const std::string calib = dir.write("calib.json", ids + "]");
    const std::string recipe = presso::test::write_recipe(dir, "r", "family", "");
    Findings found;
    auto options =
        presso::test::compress_options(model_dir.string(), recipe, calib, dir.file("out"), 4, 32);
    compress_model(options, presso::test::registry_with_test_pass("family", [&found] {
                     return std::unique_ptr<Pass>(std::make_unique<FamilyPass>(&found));
                   }));
    CHECK(found.blocks == Model::open(model_dir.string()).num_blocks());
    CHECK(found.module_mismatch < 1e-5);
    CHECK(found.folds > 0);
    CHECK(found.fold_change < 1e-4);
  }
}

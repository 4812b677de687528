// The forward of every fixture checkpoint against transformers' reference logits, block-by-block
// execution against the whole forward, and the linear hook.
// LibTorch first: Debian's build pulls in glog, whose CHECK macro must give way to Catch's.
#include "tests/catch_torch.h"

#include <torch/cuda.h>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lib/common/files.h"
#include "lib/io/safetensors.h"
#include "lib/model/inspect.h"
#include "lib/model/model.h"
#include "tests/fixtures.h"

namespace {

namespace fs = std::filesystem;

struct Reference {
  torch::Tensor input_ids;  // [B, T] int64
  torch::Tensor logits;     // [B, T, V] fp32, undefined when the fixture has none
};

// The fixture's reference, or random ids of a fixed seed when it has none.
Reference reference_for(const fs::path& dir, const presso::Model& model) {
  const fs::path path = dir / "reference_logits.safetensors";
  if (!fs::exists(path)) {
    torch::manual_seed(0);
    return {torch::randint(0, model.config().vocab_size, {2, 24}, torch::kLong), {}};
  }
  presso::SafetensorsFile file(path.string());
  return {file.load("input_ids", torch::kLong), file.load("logits", torch::kFloat32)};
}

double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  return ((actual - expected).abs().max() / expected.abs().max()).item<double>();
}

std::vector<std::pair<fs::path, double>> checkpoints_with_tolerance(const fs::path& fixtures) {
  std::vector<std::pair<fs::path, double>> all;
  for (const auto& dir : presso::test::checkpoint_dirs(fixtures, "tiny"))
    all.push_back({dir, 1e-4});
  for (const auto& dir : presso::test::checkpoint_dirs(fixtures, "models"))
    all.push_back({dir, 1e-3});
  return all;
}

std::string short_name(const fs::path& dir) {
  return dir.parent_path().filename().string() + "/" + dir.filename().string();
}

}  // namespace

TEST_CASE("forward matches transformers' logits on every fixture checkpoint", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  for (const auto& [dir, tolerance] : checkpoints_with_tolerance(*fx)) {
    INFO(short_name(dir));
    const auto model = presso::Model::open(dir.string());
    const Reference ref = reference_for(dir, model);
    const auto logits = model.forward(ref.input_ids);
    REQUIRE(logits.scalar_type() == torch::kFloat32);
    REQUIRE(logits.sizes() == torch::IntArrayRef({ref.input_ids.size(0), ref.input_ids.size(1),
                                                  model.config().vocab_size}));
    CHECK(torch::isfinite(logits).all().item<bool>());
    if (!ref.logits.defined()) {
      std::printf("  %-28s no reference logits: checked shape and finiteness only\n",
                  short_name(dir).c_str());
      continue;
    }
    const double error = relative_error(logits, ref.logits);
    std::printf("  %-28s max relative error %.3g (tolerance %.0e)\n", short_name(dir).c_str(),
                error, tolerance);
    CHECK(error <= tolerance);
  }
}

TEST_CASE("running block by block equals forward and the hook sees every linear", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  for (const auto& [dir, tolerance] : checkpoints_with_tolerance(*fx)) {
    INFO(short_name(dir));
    const auto model = presso::Model::open(dir.string());
    const auto ids = reference_for(dir, model).input_ids;
    const auto whole = model.forward(ids);

    std::map<std::string, std::vector<int64_t>> seen;  // linear -> input shape
    int calls = 0;
    const presso::LinearHook hook = [&](const std::string& name, const torch::Tensor& input) {
      seen[name] = input.sizes().vec();
      ++calls;
    };
    auto hidden = model.embed(ids);
    for (int i = 0; i < model.num_blocks(); ++i) {
      const presso::DecoderBlock block = model.load_block(i);
      seen.clear();
      calls = 0;
      hidden = model.run_block(block, hidden, &hook);
      CHECK(calls == static_cast<int>(block.linears.size()));
      REQUIRE(seen.size() == block.linears.size());
      for (const auto& linear : block.linears) {
        INFO(linear.name);
        REQUIRE(seen.count(linear.name) == 1);
        CHECK(seen[linear.name] ==
              std::vector<int64_t>{ids.size(0), ids.size(1), linear.weight.size(1)});
      }
    }
    const auto logits = model.head(hidden);
    CHECK(relative_error(logits, whole) <= 1e-6);
  }
}

TEST_CASE("linears are named in full and stored [out, in]", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const auto llama = presso::Model::open((*fx / "tiny" / "qwen2-bias").string());
  auto block = llama.load_block(1);
  REQUIRE(block.find_linear("model.layers.1.self_attn.k_proj") != nullptr);
  CHECK(block.linear("self_attn.k_proj").weight.sizes() == torch::IntArrayRef({32, 64}));
  CHECK(block.linear("self_attn.k_proj").bias.has_value());
  CHECK_FALSE(block.linear("self_attn.o_proj").bias.has_value());

  const auto gpt2 = presso::Model::open((*fx / "tiny" / "gpt2").string());
  const auto gblock = gpt2.load_block(0);
  const auto& c_fc = gblock.linear("mlp.c_fc");
  CHECK(c_fc.name == "transformer.h.0.mlp.c_fc");
  CHECK(c_fc.stored_transposed);
  CHECK(c_fc.weight.sizes() == torch::IntArrayRef({256, 64}));  // stored [64, 256]
}

TEST_CASE("gpt2 checkpoints without the transformer. prefix give the same logits", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  const fs::path source = *fx / "tiny" / "gpt2";
  const fs::path dir = fs::temp_directory_path() / "presso-model-test-gpt2-bare";
  presso::remove_tree(dir.string());
  fs::create_directories(dir);
  fs::copy_file(source / "config.json", dir / "config.json");
  {
    const auto store = presso::TensorStore::open_dir(source.string());
    presso::SafetensorsWriter writer((dir / "model.safetensors").string());
    const std::string prefix = "transformer.";
    for (const auto& name : store.names()) {
      const bool prefixed = name.rfind(prefix, 0) == 0;
      writer.add(prefixed ? name.substr(prefix.size()) : name, store.load(name, std::nullopt));
    }
    writer.finish();
  }
  const auto original = presso::Model::open(source.string());
  const auto bare = presso::Model::open(dir.string());
  CHECK(bare.family().prefix.empty());
  const auto ids = reference_for(source, original).input_ids;
  CHECK(torch::equal(bare.forward(ids), original.forward(ids)));
  presso::remove_tree(dir.string());
}

TEST_CASE("parameter count and inspect describe the checkpoint", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  // The sharded checkpoint's index states transformers' own count.
  const auto sharded = presso::Model::open((*fx / "tiny" / "llama3-rope-sharded").string());
  CHECK(sharded.parameter_count() == 119104);
  const std::string text = presso::inspect_model((*fx / "tiny" / "llama3-rope-sharded").string());
  INFO(text);
  for (const char* needle : {"llama", "llama3", "119104", "BF16", "5 file(s)", "kv heads"})
    CHECK_THAT(text, Catch::Matchers::Contains(needle));
  const std::string opt = presso::inspect_model((*fx / "tiny" / "opt").string());
  CHECK_THAT(opt, Catch::Matchers::Contains("learned positions"));
  CHECK_THAT(opt, Catch::Matchers::Contains("tied embeddings:      yes"));
}

TEST_CASE("the forward on CUDA matches the CPU forward", "[golden]") {
  auto fx = presso::test::fixtures_or_skip();
  if (!fx) return;
  if (!torch::cuda::is_available()) {
    std::printf("  no CUDA device: CPU-only run, CUDA forward not compared\n");
    return;
  }
  for (const auto& [dir, tolerance] : checkpoints_with_tolerance(*fx)) {
    INFO(short_name(dir));
    auto model = presso::Model::open(dir.string());
    const auto ids = reference_for(dir, model).input_ids;
    const auto cpu = model.forward(ids);
    model.to(torch::kCUDA);  // moves the blocks forward() kept, too
    const auto cuda = model.forward(ids);
    REQUIRE(cuda.device().is_cuda());
    const double error = relative_error(cuda.cpu(), cpu);
    std::printf("  %-28s CUDA vs CPU max relative error %.3g\n", short_name(dir).c_str(), error);
    CHECK(error <= tolerance);
  }
}

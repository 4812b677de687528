// Magnitude pruning end to end on every fixture model: 50 % and 2:4, alone and followed by GPTQ
// w4g128. The outputs are read back by a reader written here from docs/formats.md alone (the
// safetensors and config.json as stored, the 2:4 bitmask decoded bit by bit), which checks exact
// sparsity per comparison group, that GPTQ keeps every pruned weight at zero, and the stored
// sparsity_config; `presso eval` loads each one.
#include <cmath>
#include <filesystem>
#include <map>

#include "lib/common/files.h"
#include "lib/io/safetensors.h"
#include "lib/model/model.h"
#include "tests/catch_torch.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

struct Case {
  std::string name;
  std::string recipe;
  int n = 0, m = 0;  // 0: unstructured 50 % per linear
  bool quantized = false;
};

const std::vector<Case> kCases = {
    {"mag50", "passes:\n  - magnitude: {sparsity: 0.5}\n", 0, 0, false},
    {"mag24", "passes:\n  - magnitude: {pattern: \"2:4\"}\n", 2, 4, false},
    {"mag50-gptq",
     "passes:\n  - magnitude: {sparsity: 0.5}\n"
     "  - gptq: {bits: 4, group_size: 128, symmetric: false}\n",
     0, 0, true},
    {"mag24-gptq",
     "passes:\n  - magnitude: {pattern: \"2:4\"}\n"
     "  - gptq: {bits: 4, group_size: 128, symmetric: false}\n",
     2, 4, true},
};

// The 2:4 bitmask of docs/formats.md, decoded bit by bit: kept[r][c] = bit c % 8 of byte c / 8.
torch::Tensor decode_bitmask(const torch::Tensor& bitmask, int64_t cols) {
  const torch::Tensor bytes = bitmask.to(torch::kInt64).contiguous();
  torch::Tensor kept = torch::zeros({bytes.size(0), cols}, torch::kBool);
  auto b = bytes.accessor<int64_t, 2>();
  auto k = kept.accessor<bool, 2>();
  for (int64_t r = 0; r < bytes.size(0); ++r)
    for (int64_t c = 0; c < cols; ++c) k[r][c] = (b[r][c / 8] >> (c % 8)) & 1;
  return kept;
}

// Zeros of a block linear as stored: `.weight` read raw, or the 2:4 layout decoded here, or (for
// a quantized linear, whose packing is checked elsewhere) presso's dequantized load.
torch::Tensor stored_nonzero(const TensorStore& store, const DecoderBlock& block,
                             const Linear& linear) {
  if (store.contains(linear.name + ".weight")) {
    torch::Tensor w = store.load(linear.name + ".weight", torch::kFloat32);
    return (linear.stored_transposed ? w.t() : w) != 0;
  }
  if (store.contains(linear.name + ".bitmask")) {
    const torch::Tensor shape = store.load(linear.name + ".shape", std::nullopt).flatten();
    const int64_t rows = shape[0].item<int64_t>(), cols = shape[1].item<int64_t>();
    CHECK(store.info(linear.name + ".compressed").shape == std::vector<int64_t>{rows, cols / 2});
    return decode_bitmask(store.load(linear.name + ".bitmask", std::nullopt), cols);
  }
  return block.linear(linear.name.substr(block.prefix.size())).weight != 0;
}

}  // namespace

TEST_CASE("magnitude pruning alone and before gptq: exact sparsity, metadata, loads back",
          "[golden]") {
  auto fixtures = presso::test::fixtures_or_skip();
  if (!fixtures) return;
  const std::string calib = (*fixtures / "text" / "calib.txt").string();
  const std::string eval = (*fixtures / "text" / "eval.txt").string();
  for (const auto& model_dir : presso::test::checkpoint_dirs(*fixtures, "models")) {
    const double base = presso::test::perplexity(model_dir.string(), eval, 4);
    // The kept weights of the pruning-only runs, by structure and linear: GPTQ after them must
    // keep those zeros (it may round a few more weights to zero as well).
    std::map<int, std::map<std::string, torch::Tensor>> pruned_alone;
    for (const Case& c : kCases) {
      INFO(model_dir.filename().string() << " " << c.name);
      TempDir dir("magnitude");
      const std::string recipe = dir.write(c.name + ".yaml", c.recipe);
      const std::string out = dir.file("out");
      compress_model(presso::test::compress_options(model_dir.string(), recipe,
                                                    c.quantized ? calib : "", out, 8, 256),
                     pass_registry());

      // Every block linear: exactly half pruned per linear, or 2 of every 4 inputs per row.
      Model written = Model::open(out);
      TensorStore store = TensorStore::open_dir(out);
      for (int b = 0; b < written.num_blocks(); ++b) {
        const DecoderBlock block = written.load_block(b);
        for (const Linear& linear : block.linears) {
          const torch::Tensor kept = stored_nonzero(store, block, linear);
          if (c.quantized) {
            const torch::Tensor& mask = pruned_alone.at(c.m).at(linear.name);
            CHECK(kept.logical_and(mask.logical_not()).sum().item<int64_t>() == 0);
            continue;
          }
          pruned_alone[c.m][linear.name] = kept;
          if (c.m == 0) {
            CHECK(kept.logical_not().sum().item<int64_t>() == kept.numel() / 2);
          } else {
            const torch::Tensor groups = kept.reshape({kept.size(0), -1, c.m});
            CHECK(groups.logical_not().sum(-1).eq(c.n).all().item<bool>());
          }
        }
      }

      // The metadata, as compressed-tensors' SparsityCompressionConfig.
      const auto config = nlohmann::json::parse(read_file_bytes(out + "/config.json"));
      const auto& q = config.at("quantization_config");
      const auto& sparsity = q.at("sparsity_config");
      CHECK(q.at("quant_method") == "compressed-tensors");
      CHECK(sparsity.at("format") == (c.m == 4 && !c.quantized ? "sparse-24-bitmask" : "dense"));
      CHECK(sparsity.at("sparsity_structure") == (c.m == 4 ? "2:4" : "unstructured"));
      CHECK(sparsity.at("targets") == nlohmann::json::array({"Linear"}));
      CHECK(sparsity.at("ignore") == nlohmann::json::array({"lm_head"}));
      CHECK(q.contains("config_groups") == c.quantized);
      // global_sparsity: the zeros of every parameter over all of them (pruned weights are half
      // the block linears, the rest holds almost no exact zero).
      int64_t block_weights = 0, total = 0;
      for (const auto& linear : written.linears())
        if (linear.block >= 0) block_weights += linear.out * linear.in;
      total = written.parameter_count();
      const double pruned_share = 0.5 * static_cast<double>(block_weights) / total;
      CHECK(sparsity.at("global_sparsity").get<double>() >= pruned_share);
      CHECK(sparsity.at("global_sparsity").get<double>() < pruned_share + 0.01);

      // It loads back and evaluates; pruning half the weights costs perplexity.
      const double ppl = presso::test::perplexity(out, eval, 4);
      CHECK(std::isfinite(ppl));
      CHECK(ppl > base);
      std::cout << model_dir.filename().string() << " " << c.name << ": ppl " << ppl << " (base "
                << base << ")\n";
    }
  }
}

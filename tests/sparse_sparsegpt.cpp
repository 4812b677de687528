// SparseGPT (lib/sparse/sparsegpt.h on the OBS sweep of lib/quant/gptq.h): both sweep kernels
// against the direct OBS loop of lib/quant/reference.h (mask, kept weights, codes), exact counts
// per comparison group, joint prune + quantize, and the layer objective against magnitude.
#include "tests/catch_torch.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "lib/quant/gptq.h"
#include "lib/quant/quant.h"
#include "lib/quant/reference.h"
#include "lib/sparse/sparse.h"
#include "tests/obs_layers.h"

using namespace presso;
using presso::test::Layer;
using presso::test::random_layer;

namespace {

struct Case {
  double sparsity;
  SparsityPattern pattern;
  std::optional<QuantScheme> scheme;  // joint quantization
};

GptqOptions sparsegpt_options(const Case& c, int64_t block_size) {
  GptqOptions options;
  options.block_size = block_size;
  options.pruning = sparsegpt_pruning(c.sparsity, c.pattern);
  options.quantize = c.scheme.has_value();
  if (c.scheme) options.scheme = *c.scheme;
  return options;
}

std::string describe(const Case& c, int64_t block_size, int dead) {
  return fmt::format("pattern {} sparsity {} quant {} block {} dead {}",
                     sparsity_pattern_name(c.pattern), c.sparsity,
                     c.scheme ? fmt::format("w{} g{} {}", c.scheme->bits, c.scheme->group_size,
                                            c.scheme->symmetric ? "sym" : "asym")
                              : "none",
                     block_size, dead);
}

// Pruned weights per block of `block_size` columns: the unstructured comparison group.
std::vector<int64_t> pruned_per_block(const torch::Tensor& mask, int64_t block_size) {
  std::vector<int64_t> counts;
  for (int64_t c = 0; c < mask.size(1); c += block_size) {
    counts.push_back(mask.slice(1, c, c + block_size).logical_not().sum().item<int64_t>());
  }
  return counts;
}

}  // namespace

TEST_CASE("sparsegpt sweeps match the direct OBS reference: masks, kept weights and codes",
          "[unit]") {
  const std::vector<Case> cases = {
      {0.5, {}, std::nullopt},
      {0.3, {}, std::nullopt},
      {0.5, {2, 4}, std::nullopt},
      {0.5, {4, 8}, std::nullopt},
      {0.25, {1, 4}, std::nullopt},
      {0.5, {}, QuantScheme{4, -1, false}},
      {0.5, {}, QuantScheme{4, 32, false}},
      {0.5, {2, 4}, QuantScheme{4, 32, false}},
      {0.5, {2, 4}, QuantScheme{3, 16, true}},
      {0.6, {}, QuantScheme{8, 64, true}},
  };
  int trial = 0;
  for (const Case& c : cases) {
    for (int64_t block_size : {32, 64}) {
      ++trial;
      const int dead = trial % 3 == 0 ? 3 : 0;
      const Layer layer = random_layer(24, 128, 500 + trial, dead);
      const GptqOptions base = sparsegpt_options(c, block_size);
      INFO(describe(c, block_size, dead));
      const GptqResult ref = gptq_quantize_ref(layer.weight, layer.hessian, base);
      REQUIRE(ref.mask.defined());
      for (GptqSweepKernel kernel : {GptqSweepKernel::kFusedCpu, GptqSweepKernel::kTensorOps}) {
        GptqOptions options = base;
        options.kernel = kernel;
        INFO((kernel == GptqSweepKernel::kFusedCpu ? "fused CPU sweep" : "tensor-op sweep"));
        const GptqResult fast = gptq_quantize(layer.weight, layer.hessian, options, std::nullopt, "w");
        REQUIRE(fast.mask.defined());
        // With quantization, fp32 summation order (lazy batches against the direct loop) may
        // round a value at a tie the other way; its row then legitimately chooses and rounds
        // differently from there on. Without, nothing rounds: every row must agree.
        torch::Tensor diverged = (fast.mask != ref.mask).any(1);
        if (c.scheme) diverged.logical_or_((fast.weight.q != ref.weight.q).any(1));
        const torch::Tensor same = diverged.logical_not();
        const int64_t rows_diverged = diverged.sum().item<int64_t>();
        INFO("rows diverged: " << rows_diverged);
        CHECK(rows_diverged <= (c.scheme ? 1 : 0));
        const float tolerance = 1e-5f * layer.weight.abs().max().item<float>();
        CHECK((fast.dequantized - ref.dequantized).index({same}).abs().max().item<float>() <=
              tolerance);
        if (rows_diverged == 0) CHECK(fast.loss == Approx(ref.loss).epsilon(1e-4));
        // Pruned weights are exactly 0.
        CHECK(fast.dequantized.masked_select(fast.mask.logical_not()).abs().max().item<float>() ==
              0);
        if (c.scheme) {
          CHECK(torch::equal(dequantize(fast.weight), fast.dequantized));
        } else {
          CHECK_FALSE(fast.weight.q.defined());
        }
        // The comparison groups lose exactly their share.
        if (c.pattern.structured()) {
          CHECK(satisfies_pattern(fast.mask, c.pattern));
        } else {
          for (int64_t pruned : pruned_per_block(fast.mask, block_size)) {
            CHECK(pruned == pruned_count(24 * block_size, c.sparsity));
          }
        }
      }
    }
  }
}

TEST_CASE("joint prune and quantize leaves the zeros on the grid's zero point and the rest on the "
          "grid",
          "[unit]") {
  const Layer layer = random_layer(32, 256, 77);
  for (const SparsityPattern& pattern : {SparsityPattern{}, SparsityPattern{2, 4}}) {
    INFO(sparsity_pattern_name(pattern));
    GptqOptions options = sparsegpt_options({0.5, pattern, QuantScheme{4, 128, false}}, 128);
    const GptqResult result = gptq_quantize(layer.weight, layer.hessian, options);
    REQUIRE_NOTHROW(check_quantized_weight(result.weight, "w"));
    const torch::Tensor pruned = result.mask.logical_not();
    CHECK(mask_sparsity(result.mask) == Approx(0.5));
    const torch::Tensor zero_of_column = result.weight.zero_point.index_select(
        1, column_groups(result.weight).to(torch::kLong));
    CHECK(torch::equal(result.weight.q.masked_select(pruned),
                       zero_of_column.to(torch::kInt8).masked_select(pruned)));
    CHECK(result.dequantized.masked_select(pruned).abs().max().item<float>() == 0);
    // Every kept weight is a grid point: (code − z)·s.
    CHECK(torch::equal(dequantize(result.weight), result.dequantized));
    // A grid point is not the weight: quantization happened.
    CHECK(result.weight.scale.defined());
  }
}

TEST_CASE("sparsegpt beats magnitude pruning in the layer objective, unstructured and N:M",
          "[unit]") {
  for (int trial = 0; trial < 4; ++trial) {
    const Layer layer = random_layer(64, 256, 900 + trial);
    for (const SparsityPattern& pattern :
         {SparsityPattern{}, SparsityPattern{2, 4}, SparsityPattern{4, 8}}) {
      INFO(sparsity_pattern_name(pattern) << " trial " << trial);
      const GptqResult sparse =
          gptq_quantize(layer.weight, layer.hessian, sparsegpt_options({0.5, pattern, {}}, 128));
      torch::Tensor magnitude = layer.weight.clone();
      apply_mask_(magnitude, magnitude_mask(layer.weight, 0.5, MaskScope::kLayer, pattern));
      const double obs = layer_objective(layer.weight, sparse.dequantized, layer.hessian);
      const double baseline = layer_objective(layer.weight, magnitude, layer.hessian);
      INFO("objective sparsegpt " << obs << ", magnitude " << baseline);
      CHECK(obs < 0.8 * baseline);
    }
  }
}

TEST_CASE("sparsegpt rejects what it cannot do, naming the tensor", "[unit]") {
  const Layer layer = random_layer(8, 64, 5);
  GptqOptions options = sparsegpt_options({0.5, {2, 4}, {}}, 30);
  CHECK_THROWS_WITH(gptq_quantize(layer.weight, layer.hessian, options, std::nullopt, "w"),
                    Catch::Contains("block_size 30 must be a multiple of M = 4"));
  options = sparsegpt_options({0.5, {}, QuantScheme{4, 32, false}}, 32);
  options.act_order = true;
  CHECK_THROWS_WITH(gptq_quantize(layer.weight, layer.hessian, options, std::nullopt, "w"),
                    Catch::Contains("act_order"));
  const Layer odd = random_layer(8, 66, 6);
  options = sparsegpt_options({0.5, {4, 8}, {}}, 64);
  CHECK_THROWS_WITH(gptq_quantize(odd.weight, odd.hessian, options, std::nullopt, "odd.weight"),
                    Catch::Contains("odd.weight") && Catch::Contains("M = 8"));
  CHECK_THROWS_WITH(sparsegpt_pruning(1.0, {}), Catch::Contains("sparsity 1"));
}

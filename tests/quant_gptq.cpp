// The GPTQ kernel (lib/quant/gptq.h): every sweep implementation against the direct OBS loop of
// lib/quant/reference.h over every option combination, the layer objective against RTN, damping
// retries, dead inputs, g_idx and sparsity masks.
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/quant/gptq.h"
#include "lib/quant/quant.h"
#include "lib/quant/reference.h"
#include "tests/catch_torch.h"
#include "tests/gptq_sweep_cases.h"
#include "tests/obs_layers.h"

using namespace presso;
using namespace presso::test;

TEST_CASE("gptq sweep matches the direct OBS reference over every option combination", "[unit]") {
  struct Shape {
    int group_size;
    int64_t block_size;
  };
  // Groups smaller, larger and not dividing the block; per channel.
  const std::vector<Shape> shapes = {{-1, 32}, {16, 32}, {64, 32}, {32, 48}, {128, 128}};
  int64_t total_rows = 0, total_codes = 0, rows_diverged = 0, codes_differ = 0;
  float worst_tie = 0;
  int trial = 0;
  for (bool act_order : {false, true}) {
    for (bool static_groups : {false, true}) {
      for (const Shape& shape : shapes) {
        for (bool symmetric : {true, false}) {
          ++trial;
          GptqOptions options;
          options.scheme =
              QuantScheme{std::vector<int>{3, 4, 8}[trial % 3], shape.group_size, symmetric};
          options.block_size = shape.block_size;
          options.act_order = act_order;
          options.static_groups = static_groups;
          if (trial % 7 == 0) options.grid.scale_dtype = torch::kFloat16;
          if (trial % 5 == 2) options.grid.scale_dtype = torch::kBFloat16;
          options.grid.avoid_qmin_zero_point = trial % 6 == 1;
          if (trial % 11 == 0) options.grid.mse = gptq_mse_search();
          const bool masked = trial % 3 == 1;
          const int dead = trial % 4 == 0 ? 3 : 0;
          const Layer layer = random_layer(24, 128, 1000 + trial, dead);
          std::optional<torch::Tensor> mask;
          if (masked) mask = random_mask(24, 128, 0.5, 2000 + trial);
          INFO(describe(options, masked, dead));

          torch::Tensor ties;
          const GptqResult ref =
              gptq_quantize_ref(layer.weight, layer.hessian, options, mask, &ties);
          const torch::Tensor order = visit_order(layer.hessian, options);
          for (GptqSweepKernel kernel : {GptqSweepKernel::kFusedCpu, GptqSweepKernel::kTensorOps}) {
            options.kernel = kernel;
            INFO((kernel == GptqSweepKernel::kFusedCpu ? "fused CPU sweep" : "tensor-op sweep"));
            const GptqResult fast = gptq_quantize(layer.weight, layer.hessian, options, mask, "w");
            REQUIRE_NOTHROW(check_quantized_weight(fast.weight, "w"));
            CHECK(torch::equal(dequantize(fast.weight), fast.dequantized));
            CHECK(fast.weight.g_idx.has_value() == ref.weight.g_idx.has_value());
            if (fast.weight.g_idx && ref.weight.g_idx) {
              CHECK(torch::equal(*fast.weight.g_idx, *ref.weight.g_idx));
            }
            const Agreement a = compare(fast, ref, ties, order);
            INFO("rows diverged " << a.rows_diverged << ", codes differing " << a.codes_differ
                                  << ", worst tie distance at a first difference "
                                  << a.worst_first_tie << ", worst |dq| difference elsewhere "
                                  << a.worst_dequantized);
            CHECK(a.rows_not_at_tie == 0);
            CHECK(a.worst_dequantized <= 1e-5f * layer.weight.abs().max().item<float>());
            if (a.rows_diverged == 0) {
              CHECK(torch::allclose(fast.weight.scale, ref.weight.scale, 1e-5, 0));
              CHECK(torch::equal(fast.weight.zero_point, ref.weight.zero_point));
              CHECK(fast.loss == Approx(ref.loss).epsilon(1e-4));
            }
            CHECK(fast.damp_used == ref.damp_used);
            total_rows += fast.weight.q.size(0);
            total_codes += fast.weight.q.numel();
            rows_diverged += a.rows_diverged;
            codes_differ += a.codes_differ;
            worst_tie = std::max(worst_tie, a.worst_first_tie);
            if (mask) {
              // Pruned weights are exactly 0, coded as their group's zero point.
              const torch::Tensor pruned = mask->logical_not();
              CHECK(fast.dequantized.masked_select(pruned).abs().max().item<float>() == 0);
              const torch::Tensor zero_of_column = fast.weight.zero_point.index_select(
                  1, column_groups(fast.weight).to(torch::kLong));
              CHECK(torch::equal(fast.weight.q.masked_select(pruned),
                                 zero_of_column.to(torch::kInt8).masked_select(pruned)));
            }
          }
        }
      }
    }
  }
  // The tally the brief asks for: codes that differ from the reference, all after a tie.
  std::cout << "gptq fast vs reference: " << rows_diverged << " of " << total_rows
            << " rows diverged at a rounding tie (" << codes_differ << " of " << total_codes
            << " codes differ after it); worst tie distance " << worst_tie << "\n";
}

TEST_CASE("a group scale that overflows its storage dtype is an error naming the tensor",
          "[unit]") {
  Layer layer = random_layer(8, 64, 1500);
  layer.weight.slice(1, 32, 64) *= 1e7;  // the second group's fp16 scale overflows
  GptqOptions options;
  options.scheme = QuantScheme{4, 32, true};
  options.block_size = 32;
  options.grid.scale_dtype = torch::kFloat16;
  for (GptqSweepKernel kernel : {GptqSweepKernel::kFusedCpu, GptqSweepKernel::kTensorOps}) {
    options.kernel = kernel;
    CHECK_THROWS_AS(gptq_quantize(layer.weight, layer.hessian, options, std::nullopt, "big"),
                    UserError);
    CHECK_THROWS_WITH(
        gptq_quantize(layer.weight, layer.hessian, options, std::nullopt, "big"),
        Catch::Contains("overflows") && Catch::Contains("Half") && Catch::Contains("'big'"));
  }
}

TEST_CASE("gptq beats round to nearest in the layer objective on random correlated layers",
          "[unit]") {
  int trial = 0;
  for (int bits : {3, 4}) {
    for (int group_size : {-1, 32}) {
      for (bool act_order : {false, true}) {
        ++trial;
        const Layer layer = random_layer(64, 256, 3000 + trial, trial % 2);
        GptqOptions options;
        options.scheme = QuantScheme{bits, group_size, trial % 3 != 0};
        options.act_order = act_order;
        const GptqResult gptq = gptq_quantize(layer.weight, layer.hessian, options);
        const torch::Tensor rtn = dequantize(quantize_rtn(layer.weight, options.scheme));
        const double gptq_objective =
            layer_objective(layer.weight, gptq.dequantized, layer.hessian);
        const double rtn_objective = layer_objective(layer.weight, rtn, layer.hessian);
        INFO(describe(options, false, trial % 2)
             << ": gptq " << gptq_objective << " rtn " << rtn_objective << " loss " << gptq.loss);
        CHECK(gptq_objective < 0.9 * rtn_objective);
        // The OBS steps add up exactly: the reported loss is half the objective under the damped
        // Hessian that the sweep solved with, from the weight with dead columns zeroed.
        const torch::Tensor dead = layer.hessian.diagonal() == 0;
        torch::Tensor damped = layer.hessian.clone();
        damped.diagonal().masked_fill_(dead, 1.0);
        damped.diagonal().add_(options.damp * damped.diagonal().mean().item<double>());
        const torch::Tensor live_weight = layer.weight.masked_fill(dead.unsqueeze(0), 0.0);
        CHECK(gptq.loss ==
              Approx(layer_objective(live_weight, gptq.dequantized, damped) / 2).epsilon(1e-3));
      }
    }
  }
}

TEST_CASE("gptq on a sparsity mask keeps pruned weights at zero and compensates them", "[unit]") {
  const Layer layer = random_layer(48, 128, 4000);
  const torch::Tensor mask = random_mask(48, 128, 0.5, 4001);
  GptqOptions options;
  options.scheme = QuantScheme{4, 32, false};
  const GptqResult gptq = gptq_quantize(layer.weight, layer.hessian, options, mask, "w");
  CHECK((gptq.dequantized.masked_select(mask.logical_not()) == 0).all().item<bool>());
  const torch::Tensor pruned = layer.weight * mask;
  const torch::Tensor rtn = dequantize(quantize_rtn(pruned, options.scheme));
  CHECK((rtn.masked_select(mask.logical_not()) == 0).all().item<bool>());
  // Pruning dominates the objective here. RTN adds its rounding to it; GPTQ pushes the error of
  // each pruned weight onto the kept ones and ends below pruning alone.
  const double gptq_objective = layer_objective(layer.weight, gptq.dequantized, layer.hessian);
  const double rtn_objective = layer_objective(layer.weight, rtn, layer.hessian);
  const double pruned_objective = layer_objective(layer.weight, pruned, layer.hessian);
  INFO("gptq " << gptq_objective << " rtn " << rtn_objective << " pruned alone "
               << pruned_objective);
  CHECK(gptq_objective < rtn_objective);
  CHECK(gptq_objective < 0.97 * pruned_objective);
}

TEST_CASE("a Hessian that does not factor is damped tenfold more and the damping reported",
          "[unit]") {
  // H = Q·diag(λ)·Qᵀ with one eigenvalue −5 % of mean(λ): damp 0.01 leaves it indefinite, 0.1
  // does not.
  torch::manual_seed(5);
  const int64_t in = 32;
  const torch::Tensor q = std::get<0>(torch::linalg_qr(torch::randn({in, in})));
  torch::Tensor lambda = torch::rand({in}) + 0.5;
  const auto with_negative = [&](double fraction_of_mean) {
    torch::Tensor l = lambda.clone();
    l[0] = -fraction_of_mean * l.mean().item<double>();
    return (q * l).mm(q.t());
  };
  const torch::Tensor weight = torch::randn({8, in});
  GptqOptions options;
  options.scheme = QuantScheme{4, -1, true};
  const GptqResult retried = gptq_quantize(weight, with_negative(0.05), options, std::nullopt, "w");
  CHECK(retried.retries == 1);
  CHECK(retried.damp_used == Approx(0.1));
  CHECK(torch::isfinite(retried.dequantized).all().item<bool>());

  options.max_damp_retries = 0;
  CHECK_THROWS_AS(gptq_quantize(weight, with_negative(0.05), options, std::nullopt, "w"),
                  UserError);
  options.max_damp_retries = 3;
  try {
    gptq_quantize(weight, with_negative(50), options, std::nullopt, "model.layers.2.mlp.up_proj");
    FAIL("expected UserError");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK_THAT(message, Catch::Contains("model.layers.2.mlp.up_proj"));
    CHECK_THAT(message, Catch::Contains("damp tried: 0.01, 0.1, 1, 10"));
  }
  // Damping 0 that fails moves to the default 0.01.
  const torch::Tensor singular = with_negative(0.001);
  options.damp = 0;
  const GptqResult from_zero = gptq_quantize(weight, singular, options, std::nullopt, "w");
  CHECK(from_zero.retries == 1);
  CHECK(from_zero.damp_used == Approx(0.01));
}

TEST_CASE("dead inputs get zero weights and the per-channel grid of the original weight",
          "[unit]") {
  const Layer layer = random_layer(16, 64, 5000, /*dead=*/4);
  const torch::Tensor dead = layer.hessian.diagonal() == 0;
  REQUIRE(dead.sum().item<int64_t>() == 4);
  for (bool act_order : {false, true}) {
    GptqOptions options;
    options.scheme = QuantScheme{4, -1, false};
    options.act_order = act_order;
    const GptqResult result = gptq_quantize(layer.weight, layer.hessian, options);
    CHECK((result.dequantized.index_select(1, dead.nonzero().flatten()) == 0).all().item<bool>());
    // The original finds per-channel grids before zeroing dead columns.
    const QuantGrid grid = compute_grid(layer.weight, options.scheme);
    CHECK(torch::equal(result.weight.scale, grid.scale));
    CHECK(torch::equal(result.weight.zero_point, grid.zero_point));
    // Dead inputs are visited last with act order: their H_jj = 1 is below every live one here.
    if (act_order) {
      const torch::Tensor order = visit_order(layer.hessian, options);
      CHECK(dead.index_select(0, order.slice(0, 60)).any().item<bool>() == false);
    }
  }
}

TEST_CASE("act order with dynamic groups saves g_idx, static groups need none", "[unit]") {
  const Layer layer = random_layer(16, 128, 6000);
  GptqOptions options;
  options.scheme = QuantScheme{4, 32, true};
  options.act_order = true;
  const torch::Tensor order = visit_order(layer.hessian, options);
  const GptqResult dynamic = gptq_quantize(layer.weight, layer.hessian, options);
  REQUIRE(dynamic.weight.g_idx.has_value());
  // The column visited at position p is in group p / group_size.
  const torch::Tensor expected = torch::arange(128).div(32, "floor").to(torch::kInt32);
  CHECK(torch::equal(dynamic.weight.g_idx->index_select(0, order), expected));
  CHECK(torch::equal(dequantize(dynamic.weight), dynamic.dequantized));

  options.static_groups = true;
  const GptqResult fixed = gptq_quantize(layer.weight, layer.hessian, options);
  CHECK_FALSE(fixed.weight.g_idx.has_value());
  // Static grids are those of the original weight in column order.
  const QuantGrid grid = compute_grid(layer.weight, options.scheme);
  CHECK(torch::equal(fixed.weight.scale, grid.scale));

  options.act_order = false;
  options.static_groups = false;
  CHECK_FALSE(gptq_quantize(layer.weight, layer.hessian, options).weight.g_idx.has_value());
}

TEST_CASE("one prepared Hessian serves several weights with the same input", "[unit]") {
  const Layer layer = random_layer(16, 64, 7000);
  const torch::Tensor other = torch::randn({40, 64}) * 0.1;
  GptqOptions options;
  options.scheme = QuantScheme{4, 16, false};
  options.act_order = true;
  const GptqHessian prepared = prepare_gptq_hessian(layer.hessian, options, torch::kCPU, "qkv");
  for (const torch::Tensor& w : {layer.weight, other}) {
    const GptqResult shared = gptq_sweep(w, prepared, options);
    const GptqResult own = gptq_quantize(w, layer.hessian, options);
    CHECK(torch::equal(shared.weight.q, own.weight.q));
    CHECK(torch::equal(shared.dequantized, own.dequantized));
  }
  GptqOptions plain = options;
  plain.act_order = false;
  CHECK_THROWS_AS(gptq_sweep(layer.weight, prepared, plain), InternalError);
}

TEST_CASE("gptq validates shapes and options, naming the tensor", "[unit]") {
  const Layer layer = random_layer(8, 64, 8000);
  GptqOptions options;
  options.scheme = QuantScheme{4, 48, true};
  CHECK_THROWS_WITH(gptq_quantize(layer.weight, layer.hessian, options, std::nullopt, "w.q"),
                    Catch::Contains("w.q") && Catch::Contains("group_size 48"));
  options.scheme = QuantScheme{4, 32, true};
  options.block_size = 0;
  options.damp = -1;
  CHECK_THROWS_WITH(gptq_quantize(layer.weight, layer.hessian, options, std::nullopt, "w.q"),
                    Catch::Contains("block_size 0") && Catch::Contains("damp -1"));
  options = GptqOptions{};
  options.scheme = QuantScheme{4, 32, true};
  CHECK_THROWS_WITH(gptq_quantize(layer.weight, layer.hessian.slice(0, 0, 32).slice(1, 0, 32),
                                  options, std::nullopt, "w.q"),
                    Catch::Contains("w.q") && Catch::Contains("[32, 32]"));
  CHECK_THROWS_WITH(gptq_quantize(layer.weight, layer.hessian, options,
                                  torch::ones({8, 32}, torch::kBool), "w.q"),
                    Catch::Contains("sparsity mask"));
  torch::Tensor nan_hessian = layer.hessian.clone();
  nan_hessian[1][2] = std::nanf("");
  CHECK_THROWS_AS(gptq_quantize(layer.weight, nan_hessian, options), UserError);
  // The fused CUDA sweep takes CUDA tensors only, and exists only in builds with CUDA kernels.
  options.kernel = GptqSweepKernel::kFusedCuda;
  CHECK_THROWS_WITH(gptq_quantize(layer.weight, layer.hessian, options, std::nullopt, "w.q"),
                    Catch::Contains("w.q") && Catch::Contains("fused CUDA"));
}

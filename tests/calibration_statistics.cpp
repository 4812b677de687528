// Input statistics of linears: chunked fp32 accumulation against a direct computation.
#include <torch/cuda.h>
#include <torch/types.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "calibration/linear_statistics.h"
#include "lib/common/errors.h"

namespace {

using presso::LinearStatistics;
using presso::StatsRequest;

constexpr StatsRequest kAll{true, true, true};

// Batches of different shapes, [B, T, in] and [N, in], some with a large mean so that the sums
// are not dominated by cancellation.
std::vector<torch::Tensor> random_inputs(int64_t in, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({2, 17, in}), torch::randn({1, 5, in}) + 3.0, torch::randn({33, in}),
          torch::randn({4, 9, in}) * 0.1, torch::randn({1, in})};
}

}  // namespace

TEST_CASE("accumulated statistics equal the direct computation over all inputs", "[unit]") {
  const int64_t in = 48;
  const std::vector<torch::Tensor> inputs = random_inputs(in, 11);
  LinearStatistics stats(kAll);
  std::vector<torch::Tensor> rows;
  int64_t samples = 0;
  for (const torch::Tensor& x : inputs) {
    stats.add(x);
    rows.push_back(x.reshape({-1, in}).to(torch::kFloat64));
    samples += x.dim() == 2 ? 1 : x.size(0);
  }
  const torch::Tensor X = torch::cat(rows);  // [n, in] fp64
  const int64_t n = X.size(0);
  REQUIRE(stats.token_count() == n);
  REQUIRE(stats.sample_count() == samples);
  REQUIRE(stats.in_features() == in);
  REQUIRE(stats.xtx().scalar_type() == torch::kFloat32);
  const torch::Tensor xtx = X.t().mm(X);
  CHECK(max_rel_error(stats.xtx(), xtx) < 1e-5);
  CHECK(max_rel_error(stats.hessian(), xtx * (2.0 / static_cast<double>(samples))) < 1e-5);
  CHECK(max_rel_error(stats.abs_sum(), X.abs().sum(0)) < 1e-5);
  CHECK(max_rel_error(stats.mean_abs(), X.abs().mean(0)) < 1e-5);
  CHECK(max_rel_error(stats.sq_norm(), X.square().sum(0)) < 1e-5);
}

TEST_CASE("bf16 and non-contiguous inputs accumulate in fp32", "[unit]") {
  const int64_t in = 32;
  torch::manual_seed(5);
  const torch::Tensor a = torch::randn({3, 20, in}).to(torch::kBFloat16);
  const torch::Tensor b = torch::randn({in, 40}).t();  // [40, in], not contiguous
  LinearStatistics stats(kAll);
  stats.add(a);
  stats.add(b);
  const torch::Tensor X =
      torch::cat({a.reshape({-1, in}).to(torch::kFloat64), b.to(torch::kFloat64)});
  CHECK(stats.xtx().scalar_type() == torch::kFloat32);
  CHECK(max_rel_error(stats.xtx(), X.t().mm(X)) < 1e-5);
  CHECK(max_rel_error(stats.abs_sum(), X.abs().sum(0)) < 1e-5);
  CHECK(max_rel_error(stats.sq_norm(), X.square().sum(0)) < 1e-5);
}

TEST_CASE("an input larger than one chunk is accumulated piecewise to the same sums", "[unit]") {
  // 2^24 elements per chunk: 8 channels give 2^21 rows per chunk, so 2^21 + 3 rows take two.
  const int64_t in = 8;
  torch::manual_seed(9);
  const torch::Tensor x = torch::rand({(int64_t{1} << 21) + 3, in}).to(torch::kBFloat16);
  LinearStatistics stats(kAll);
  stats.add(x);
  const torch::Tensor X = x.to(torch::kFloat64);
  CHECK(max_rel_error(stats.xtx(), X.t().mm(X)) < 1e-4);
  CHECK(max_rel_error(stats.abs_sum(), X.abs().sum(0)) < 1e-4);
  CHECK(max_rel_error(stats.sq_norm(), X.square().sum(0)) < 1e-4);
}

TEST_CASE("only the requested statistics are gathered", "[unit]") {
  const std::vector<torch::Tensor> inputs = random_inputs(16, 3);
  LinearStatistics sq_only(StatsRequest{false, false, true});
  LinearStatistics none(StatsRequest{});
  for (const torch::Tensor& x : inputs) {
    sq_only.add(x);
    none.add(x);
  }
  CHECK(sq_only.sq_norm().defined());
  CHECK_THROWS_AS(sq_only.xtx(), presso::InternalError);
  CHECK_THROWS_AS(sq_only.hessian(), presso::InternalError);
  CHECK_THROWS_AS(sq_only.mean_abs(), presso::InternalError);
  CHECK(none.token_count() == sq_only.token_count());
  CHECK_THROWS_AS(none.sq_norm(), presso::InternalError);
}

TEST_CASE("requests merge with |", "[unit]") {
  StatsRequest r{true, false, false};
  r |= StatsRequest{false, false, true};
  CHECK(r == StatsRequest{true, false, true});
  CHECK((StatsRequest{} | StatsRequest{false, true, false}) == StatsRequest{false, true, false});
  CHECK_FALSE(StatsRequest{}.any());
}

TEST_CASE("inputs of another width and normalised stats before any token are refused", "[unit]") {
  LinearStatistics stats(kAll);
  CHECK_THROWS_AS(stats.hessian(), presso::InternalError);
  stats.add(torch::randn({2, 3, 8}));
  CHECK_THROWS_AS(stats.add(torch::randn({4, 9})), presso::InternalError);
  CHECK_THROWS_AS(stats.add(torch::randn({8})), presso::InternalError);
  CHECK_THROWS_AS(stats.add(torch::ones({2, 8}, torch::kInt64)), presso::InternalError);
}

TEST_CASE("scaling input channels transforms the sums as if scaled inputs were gathered",
          "[unit]") {
  const int64_t in = 24;
  const std::vector<torch::Tensor> inputs = random_inputs(in, 21);
  const torch::Tensor factor = torch::rand({in}) + 0.5;
  LinearStatistics scaled_after(kAll);
  LinearStatistics scaled_before(kAll);
  for (const torch::Tensor& x : inputs) {
    scaled_after.add(x);
    scaled_before.add(x * factor);
  }
  scaled_after.scale_input_channels(factor);
  CHECK(max_rel_error(scaled_after.xtx(), scaled_before.xtx()) < 1e-5);
  CHECK(max_rel_error(scaled_after.abs_sum(), scaled_before.abs_sum()) < 1e-5);
  CHECK(max_rel_error(scaled_after.sq_norm(), scaled_before.sq_norm()) < 1e-5);
  CHECK_THROWS_AS(scaled_after.scale_input_channels(torch::ones({in + 1})), presso::InternalError);
}

TEST_CASE("the collector gathers what was requested per linear through the block hook", "[unit]") {
  presso::StatisticsCollector collector;
  collector.request("model.layers.0.self_attn.q_proj", StatsRequest{true, false, false});
  collector.request("model.layers.0.self_attn.q_proj", StatsRequest{false, true, false});
  collector.request("model.layers.0.mlp.down_proj", StatsRequest{false, false, true});
  const presso::LinearHook hook = collector.as_hook();
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({2, 6, 16});
  const torch::Tensor h = torch::randn({2, 6, 40});
  hook("model.layers.0.self_attn.q_proj", x);
  hook("model.layers.0.self_attn.k_proj", x);  // not requested: ignored
  hook("model.layers.0.mlp.down_proj", h);

  CHECK(collector.names() == std::vector<std::string>{"model.layers.0.mlp.down_proj",
                                                      "model.layers.0.self_attn.q_proj"});
  CHECK_FALSE(collector.contains("model.layers.0.self_attn.k_proj"));
  const LinearStatistics& q = collector.at("model.layers.0.self_attn.q_proj");
  CHECK(q.request() == StatsRequest{true, true, false});
  CHECK(q.token_count() == 12);
  // Adding a statistic after tokens arrived would leave it incomplete.
  CHECK_THROWS_AS(
      collector.request("model.layers.0.self_attn.q_proj", StatsRequest{true, true, true}),
      presso::InternalError);
  collector.request("model.layers.0.self_attn.q_proj", StatsRequest{true, false, false});

  const LinearStatistics down = collector.take("model.layers.0.mlp.down_proj");
  CHECK(down.sq_norm().size(0) == 40);
  CHECK_FALSE(collector.contains("model.layers.0.mlp.down_proj"));
  CHECK_THROWS_AS(collector.at("model.layers.0.mlp.down_proj"), presso::InternalError);
  collector.clear();
  CHECK(collector.names().empty());
}

TEST_CASE("statistics can be held on another device than the activations", "[unit]") {
  if (!torch::cuda::is_available()) return;  // the CPU-only build has nothing to move between
  LinearStatistics stats(kAll, torch::Device(torch::kCPU));
  const torch::Tensor x = torch::randn({3, 7, 16}, torch::Device(torch::kCUDA));
  stats.add(x);
  CHECK(stats.xtx().device().is_cpu());
  const torch::Tensor X = x.reshape({-1, 16}).cpu().to(torch::kFloat64);
  CHECK(max_rel_error(stats.xtx(), X.t().mm(X)) < 1e-5);
}

TEST_CASE("linears reading one input share its sums and get exactly their own", "[unit]") {
  presso::StatisticsCollector collector;
  const std::vector<std::string> names = {"q", "k", "v"};
  collector.request("q", StatsRequest{true, false, false});
  collector.request("k", StatsRequest{true, false, false});
  collector.request("v", kAll);  // more than q computed: its sums are its own
  const presso::LinearHook hook = collector.as_hook();
  for (const auto& x : random_inputs(24, 5)) {
    for (const auto& name : names) hook(name, x);
  }
  for (const auto& name : names) {
    LinearStatistics alone(collector.at(name).request());
    for (const auto& x : random_inputs(24, 5)) alone.add(x);
    INFO(name);
    CHECK(collector.at(name).token_count() == alone.token_count());
    CHECK(collector.at(name).sample_count() == alone.sample_count());
    CHECK(torch::equal(collector.at(name).xtx(), alone.xtx()));
  }
  CHECK(torch::equal(collector.at("v").abs_sum(), [] {
    LinearStatistics alone(kAll);
    for (const auto& x : random_inputs(24, 5)) alone.add(x);
    return alone.abs_sum();
  }()));
}


// Scheme validation, quantization grid, quantize/dequantize and dense bit packing, each against
// hand-computed answers and against the slow loop references in lib/quant/reference.h.
#include "tests/catch_torch.h"
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "lib/common/errors.h"
#include "lib/quant/quant.h"
#include "lib/quant/reference.h"

using namespace presso;

namespace {

double nmse(const torch::Tensor& approx, const torch::Tensor& exact) {
  return ((approx - exact).pow(2).sum() / exact.pow(2).sum().clamp_min(1e-30)).item<double>();
}

torch::Tensor row(std::initializer_list<float> values) {
  return torch::tensor(std::vector<float>(values)).reshape({1, -1});
}

// Σ|x − dq|^norm over each group, the MSE search's own objective: [out, n_groups].
torch::Tensor group_objective(const torch::Tensor& w, const QuantGrid& grid,
                              const QuantScheme& scheme, double norm) {
  const QuantizedWeight qw = quantize(w, grid, scheme);
  const int64_t groups = grid.scale.size(1);
  return (dequantize(qw) - w).abs().pow(norm).reshape({w.size(0), groups, -1}).sum(-1);
}

}  // namespace

TEST_CASE("scheme validation names the tensor and lists every problem", "[unit]") {
  REQUIRE_NOTHROW(validate_scheme(QuantScheme{4, 128, true}, 256, "w"));
  REQUIRE_NOTHROW(validate_scheme(QuantScheme{8, -1, false}, 100, "w"));
  try {
    validate_scheme(QuantScheme{4, 96, true}, 256, "model.layers.0.mlp.up_proj.weight");
    FAIL("expected UserError");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK(message.find("model.layers.0.mlp.up_proj.weight") != std::string::npos);
    CHECK(message.find("group_size 96 does not divide the input width 256") != std::string::npos);
  }
  try {
    validate_scheme(QuantScheme{9, 0, true});
    FAIL("expected UserError");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK(message.find("2 problems") != std::string::npos);
    CHECK(message.find("bits 9") != std::string::npos);
    CHECK(message.find("group_size 0") != std::string::npos);
  }
  torch::Tensor nan_weight = torch::zeros({2, 8});
  nan_weight[1][3] = std::nanf("");
  CHECK_THROWS_AS(compute_grid(nan_weight, QuantScheme{4, -1, true}, {}, "w"), UserError);
  CHECK(group_count(QuantScheme{4, -1, true}, 96) == 1);
  CHECK(group_count(QuantScheme{4, 32, true}, 96) == 3);
}

TEST_CASE("asymmetric grid matches the hand-computed compressed-tensors formula", "[unit]") {
  // min −1, max 3 at 4 bits: scale 4/15, zp = round(−8 + 1/(4/15)) = round(−4.25) = −4.
  const QuantGrid grid = compute_grid(row({-1, 0, 2, 3}), QuantScheme{4, -1, false});
  CHECK(grid.scale.item<float>() == 4.0f / 15.0f);
  CHECK(grid.zero_point.item<int32_t>() == -4);
  // A non-negative group clamps min to 0: zp = q_min.
  const QuantGrid positive = compute_grid(row({0.5f, 1, 2, 3}), QuantScheme{4, -1, false});
  CHECK(positive.scale.item<float>() == 3.0f / 15.0f);
  CHECK(positive.zero_point.item<int32_t>() == -8);
  // A non-positive group: zp = q_max.
  const QuantGrid negative = compute_grid(row({-3, -2, -1, -0.5f}), QuantScheme{4, -1, false});
  CHECK(negative.zero_point.item<int32_t>() == 7);
  // Tie: min −1.5, max 6 at 2 bits: scale 2.5, −2 − (−1.5/2.5) = −1.4 → −1; and a true tie
  // −2 + 0.5 = −1.5 rounds half to even → −2.
  CHECK(compute_grid(row({-1.5f, 6}), QuantScheme{2, -1, false}).zero_point.item<int32_t>() == -1);
  CHECK(compute_grid(row({-1, 5}), QuantScheme{2, -1, false}).zero_point.item<int32_t>() == -2);
}

TEST_CASE("symmetric grid is absmax over (2^b - 1)/2 with zero point 0", "[unit]") {
  const QuantGrid grid = compute_grid(row({-3, 1, 2, 0.5f}), QuantScheme{4, -1, true});
  CHECK(grid.scale.item<float>() == 3.0f / 7.5f);
  CHECK(grid.zero_point.item<int32_t>() == 0);
  const QuantGrid eight = compute_grid(row({1, 2, -127.5f}), QuantScheme{8, -1, true});
  CHECK(eight.scale.item<float>() == 1.0f);
}

TEST_CASE("an all-zero group gets the eps scale and dequantizes to exact zeros", "[unit]") {
  const torch::Tensor w = torch::cat({torch::zeros({1, 4}), row({1, -2, 3, 4})}, 1);
  for (bool symmetric : {true, false}) {
    const QuantScheme scheme{4, 4, symmetric};
    const QuantGrid grid = compute_grid(w, scheme);
    CHECK(grid.scale[0][0].item<float>() == FLT_EPSILON);
    const QuantizedWeight qw = quantize(w, grid, scheme);
    CHECK(torch::equal(dequantize(qw).narrow(1, 0, 4), torch::zeros({1, 4})));
  }
  const QuantGrid half = compute_grid(torch::zeros({2, 8}), QuantScheme{4, -1, false},
                                      GridOptions{torch::kFloat16, false, std::nullopt, {}});
  CHECK(half.scale[0][0].item<float>() == 1.0f / 1024);
}

TEST_CASE("group size equal to the width is the per-channel grid", "[unit]") {
  torch::manual_seed(1);
  const torch::Tensor w = torch::randn({16, 64});
  for (bool symmetric : {true, false}) {
    const QuantGrid a = compute_grid(w, QuantScheme{4, 64, symmetric});
    const QuantGrid b = compute_grid(w, QuantScheme{4, -1, symmetric});
    CHECK(a.scale.sizes() == torch::IntArrayRef({16, 1}));
    CHECK(torch::equal(a.scale, b.scale));
    CHECK(torch::equal(a.zero_point, b.zero_point));
  }
}

TEST_CASE("avoid_qmin_zero_point moves zero point q_min to q_min + 1 and keeps the range",
          "[unit]") {
  GridOptions options;
  options.avoid_qmin_zero_point = true;
  const torch::Tensor w = row({0.5f, 1, 2, 2.8f});
  const QuantScheme scheme{4, -1, false};
  const QuantGrid grid = compute_grid(w, scheme, options);
  CHECK(grid.zero_point.item<int32_t>() == -7);
  CHECK(grid.scale.item<float>() == 2.8f / 14.0f);
  const QuantizedWeight qw = quantize(w, grid, scheme);
  CHECK((dequantize(qw) - w).abs().max().item<float>() <= grid.scale.item<float>() / 2 * 1.0001f);
  // Groups not at q_min are untouched.
  const QuantGrid mixed = compute_grid(row({-1, 0, 2, 3}), scheme, options);
  CHECK(mixed.zero_point.item<int32_t>() == -4);
}

TEST_CASE("grid matches the loop reference over random shapes, bits and options", "[unit]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    torch::manual_seed(trial);
    const int bits = 2 + static_cast<int>(rng() % 7);
    const int64_t gs = std::vector<int64_t>{-1, 8, 16, 32}[rng() % 4];
    const int64_t groups = 1 + rng() % 4;
    const int64_t in = gs == -1 ? 8 * groups : gs * groups;
    const int64_t out = 1 + rng() % 9;
    torch::Tensor w = torch::randn({out, in}) * (0.01 + rng() % 5);
    if (trial % 5 == 0) w = w.abs();  // non-negative rows exercise zero point q_min
    const QuantScheme scheme{bits, static_cast<int>(gs), trial % 2 == 0};
    GridOptions options;
    options.scale_dtype = std::vector<torch::ScalarType>{torch::kFloat32, torch::kFloat16,
                                                         torch::kBFloat16}[trial % 3];
    options.avoid_qmin_zero_point = trial % 4 == 0;
    INFO("trial " << trial << " bits " << bits << " gs " << gs << " [" << out << ", " << in << "]");
    const QuantGrid fast = compute_grid(w, scheme, options);
    const QuantGrid ref = compute_grid_ref(w, scheme, options);
    CHECK(torch::equal(fast.scale, ref.scale));
    CHECK(torch::equal(fast.zero_point, ref.zero_point));
    const int64_t qmin = quant_min(bits);
    CHECK(fast.zero_point.min().item<int64_t>() >=
          (options.avoid_qmin_zero_point ? qmin + 1 : qmin));
    CHECK(fast.zero_point.max().item<int64_t>() <= quant_max(bits));
  }
}

TEST_CASE("quantize and dequantize match the loop reference bit for bit", "[unit]") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 30; ++trial) {
    torch::manual_seed(100 + trial);
    const int bits = 2 + static_cast<int>(rng() % 7);
    const int64_t gs = std::vector<int64_t>{-1, 4, 16}[rng() % 3];
    const int64_t in = gs == -1 ? 24 : gs * (1 + rng() % 4);
    const int64_t out = 1 + rng() % 7;
    const QuantScheme scheme{bits, static_cast<int>(gs), trial % 2 == 1};
    const torch::Tensor w = torch::randn({out, in});
    const QuantGrid grid = compute_grid(w, scheme);
    std::optional<torch::Tensor> g_idx;
    if (trial % 3 == 0) g_idx = torch::randint(grid.scale.size(1), {in}, torch::kInt32);
    const QuantizedWeight fast = quantize(w, grid, scheme, g_idx);
    const QuantizedWeight ref = quantize_ref(w, grid, scheme, g_idx);
    INFO("trial " << trial << " bits " << bits << " gs " << gs);
    REQUIRE(torch::equal(fast.q, ref.q));
    const torch::Tensor dq = dequantize(fast);
    const torch::Tensor dq_ref = dequantize_ref(ref);
    INFO("NMSE fast vs ref " << nmse(dq, dq_ref));
    CHECK(torch::equal(dq, dq_ref));
  }
}

TEST_CASE("round to nearest error is at most half a step on an unclipped grid", "[unit]") {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 24; ++trial) {
    torch::manual_seed(200 + trial);
    const int bits = std::vector<int>{2, 3, 4, 5, 6, 8}[trial % 6];
    const QuantScheme scheme{bits, trial % 2 ? 16 : -1, trial % 4 < 2};
    const torch::Tensor w = torch::randn({8, 64}) * 3;
    const QuantizedWeight qw = quantize_rtn(w, scheme);
    const torch::Tensor dq = dequantize(qw);
    const int64_t groups = qw.scale.size(1);
    const torch::Tensor half_step = (qw.scale / 2).unsqueeze(-1).expand({8, groups, 64 / groups});
    const torch::Tensor error = (dq - w).abs().reshape({8, groups, 64 / groups});
    INFO("bits " << bits << " NMSE " << nmse(dq, w) << " worst error / half step "
                 << (error / half_step).max().item<float>());
    CHECK((error <= half_step * (1 + 1e-4)).all().item<bool>());
    CHECK(nmse(dq, w) < 0.5);
  }
}

TEST_CASE("MSE grid search is never worse than min-max in its own objective", "[unit]") {
  for (int trial = 0; trial < 12; ++trial) {
    torch::manual_seed(300 + trial);
    const QuantScheme scheme{std::vector<int>{2, 3, 4, 8}[trial % 4], 32, trial % 2 == 0};
    // Heavy tails make clipping pay off.
    const torch::Tensor w = torch::randn({16, 128}) * torch::exp(torch::randn({16, 128}));
    GridOptions mse_options;
    mse_options.mse = MseSearch{};
    const QuantGrid minmax = compute_grid(w, scheme);
    const QuantGrid mse = compute_grid(w, scheme, mse_options);
    const torch::Tensor before = group_objective(w, minmax, scheme, 2.4);
    const torch::Tensor after = group_objective(w, mse, scheme, 2.4);
    INFO("trial " << trial << " objective " << before.sum().item<double>() << " -> "
                  << after.sum().item<double>());
    CHECK((after <= before).all().item<bool>());
    if (scheme.bits <= 4) CHECK(after.sum().item<double>() < before.sum().item<double>());
    // The loop reference searches the same candidates; sums may differ in the last bits.
    const QuantGrid ref = compute_grid_ref(w, scheme, mse_options);
    const double ref_objective = group_objective(w, ref, scheme, 2.4).sum().item<double>();
    CHECK(after.sum().item<double>() == Approx(ref_objective).epsilon(1e-4));
  }
}

TEST_CASE("MSE search without patience visits every shrink factor", "[unit]") {
  torch::manual_seed(5);
  const torch::Tensor w = torch::randn({4, 64});
  const QuantScheme scheme{3, -1, false};
  GridOptions gptq_style;
  gptq_style.mse = MseSearch{0.8, 0, 100, 2.4};
  GridOptions early;
  early.mse = MseSearch{0.8, 5, 100, 2.4};
  const auto objective = [&](const GridOptions& o) {
    return group_objective(w, compute_grid(w, scheme, o), scheme, 2.4);
  };
  CHECK((objective(gptq_style) <= objective(early)).all().item<bool>());
  GridOptions bad;
  bad.mse = MseSearch{1.5, 5, 100, 2.4};
  CHECK_THROWS_AS(compute_grid(w, scheme, bad), UserError);
}

TEST_CASE("dense bit packing has the documented word layout", "[unit]") {
  // 4 bits: value i in nibble i, LSB first.
  const torch::Tensor four = pack_lsb_first(torch::arange(1, 9, torch::kInt32).reshape({1, 8}), 4);
  CHECK(four.sizes() == torch::IntArrayRef({1, 1}));
  CHECK(static_cast<uint32_t>(four.item<int32_t>()) == 0x87654321u);
  // 3 bits: value 10 occupies bits 30, 31 of word 0 and bit 0 of word 1.
  torch::Tensor values = torch::zeros({1, 11}, torch::kInt32);
  values[0][10] = 7;
  const torch::Tensor three = pack_lsb_first(values, 3);
  CHECK(three.sizes() == torch::IntArrayRef({1, 2}));
  CHECK(static_cast<uint32_t>(three[0][0].item<int32_t>()) == 0xC0000000u);
  CHECK(three[0][1].item<int32_t>() == 1);
  // 2 bits, 17 values: 2 words, the second holding only value 16.
  torch::Tensor two = torch::full({1, 17}, 3, torch::kInt32);
  two[0][16] = 2;
  const torch::Tensor packed_two = pack_lsb_first(two, 2);
  CHECK(packed_two[0][0].item<int32_t>() == -1);
  CHECK(packed_two[0][1].item<int32_t>() == 2);
}

TEST_CASE("dense bit packing matches the loop reference and round-trips", "[unit]") {
  std::mt19937 rng(13);
  for (int bits = 1; bits <= 8; ++bits) {
    for (int trial = 0; trial < 6; ++trial) {
      torch::manual_seed(bits * 100 + trial);
      const int64_t rows = 1 + rng() % 5;
      const int64_t n = 1 + rng() % 150;
      const torch::Tensor values = torch::randint(int64_t{1} << bits, {rows, n}, torch::kInt32);
      const torch::Tensor fast = pack_lsb_first(values, bits);
      INFO("bits " << bits << " [" << rows << ", " << n << "]");
      REQUIRE(fast.size(1) == (n * bits + 31) / 32);
      CHECK(torch::equal(fast, pack_lsb_first_ref(values, bits)));
      CHECK(torch::equal(unpack_lsb_first(fast, bits, n), values));
      CHECK(torch::equal(unpack_lsb_first_ref(fast, bits, n), values));
    }
  }
  CHECK_THROWS_AS(pack_lsb_first(torch::full({1, 4}, 16, torch::kInt32), 4), InternalError);
}

TEST_CASE("scalar rounding of scales to fp16 and bf16 matches LibTorch's conversion", "[unit]") {
  // Normal and subnormal magnitudes of both types, the fp16 overflow boundary, exact ties and
  // fp32 subnormals; every value also negated.
  std::vector<float> values = {0.0f,     1.0f,        65504.0f,   65519.0f,   65520.0f,
                               65536.0f, 1e-8f,       5.9604645e-8f, 2.9802322e-8f,
                               6.1035156e-5f, 1.0009766f, 1.0004883f, 3.0e38f, 1e-40f,
                               1.17549435e-38f, FLT_MAX};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> exponent(-45.0f, 40.0f);
  for (int i = 0; i < 20000; ++i) values.push_back(std::exp2(exponent(rng)));
  const size_t n = values.size();
  for (size_t i = 0; i < n; ++i) values.push_back(-values[i]);
  const torch::Tensor t = torch::tensor(values);
  for (torch::ScalarType dtype : {torch::kFloat16, torch::kBFloat16}) {
    const torch::Tensor expected = t.to(dtype).to(torch::kFloat32);
    GridOptions options;
    options.scale_dtype = dtype;
    const group_grid::ScaleStorage storage = group_grid_rule(QuantScheme{}, options).storage;
    int64_t mismatches = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      const float mine = group_grid::round_to_storage(values[i], storage);
      const float theirs = expected[static_cast<int64_t>(i)].item<float>();
      if (std::memcmp(&mine, &theirs, sizeof(float)) != 0) {
        if (++mismatches <= 5) {
          UNSCOPED_INFO(c10::toString(dtype) << ": " << values[i] << " -> " << mine << ", LibTorch "
                                             << theirs);
        }
      }
    }
    CHECK(mismatches == 0);
  }
}

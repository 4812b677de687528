// Wanda's scores and OWL's layer sparsities (lib/sparse/wanda.h) against hand computations; Wanda
// masks with exact counts per output row and N:M groups over random shapes and seeds; a layer
// whose activations make Wanda keep what magnitude prunes.
#include "tests/catch_torch.h"

#include <random>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/sparse/sparse.h"

using namespace presso;

namespace {

torch::Tensor matrix(std::vector<float> values, int64_t rows, int64_t cols) {
  return torch::tensor(values).reshape({rows, cols});
}

}  // namespace

TEST_CASE("wanda scores equal |w| times the root of the summed squared inputs", "[unit]") {
  // Three tokens of a 3-wide input: Σx² per column is 1+4+4 = 9, 0+9+16 = 25, 1+0+0 = 1.
  const torch::Tensor x = matrix({1, 0, 1, 2, 3, 0, -2, 4, 0}, 3, 3);
  const torch::Tensor sq_norm = x.pow(2).sum(0);
  const torch::Tensor w = matrix({1, -2, 3, -0.5, 0.25, -4}, 2, 3);
  // |w_ij| · (3, 5, 1)_j
  const torch::Tensor expected = matrix({3, 10, 3, 1.5, 1.25, 4}, 2, 3);
  const torch::Tensor scores = wanda_scores(w, sq_norm.sqrt(), "l");
  CHECK(scores.scalar_type() == torch::kFloat32);
  CHECK(torch::allclose(scores, expected, 0, 1e-6));
  // Row 0 prunes column 0 (3 ties column 2's 3: the earlier goes first), row 1 column 1.
  const torch::Tensor mask = mask_from_scores(scores, 0.34, MaskScope::kRow, {}, "l");
  CHECK(torch::equal(mask, matrix({0, 1, 1, 1, 0, 1}, 2, 3).to(torch::kBool)));

  CHECK_THROWS_WITH(
      wanda_scores(w, torch::ones({4}), "model.layers.0.mlp.up_proj"),
      Catch::Contains("tensor 'model.layers.0.mlp.up_proj'") && Catch::Contains("expected [3]"));
  CHECK_THROWS_AS(wanda_scores(w, -torch::ones({3}), "l"), UserError);
}

TEST_CASE("wanda masks prune exactly per output row and per N:M group", "[unit]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    torch::manual_seed(trial);
    const int64_t out = std::uniform_int_distribution<int64_t>(1, 24)(rng);
    const int64_t in = 8 * std::uniform_int_distribution<int64_t>(1, 16)(rng);
    const torch::Tensor w = torch::randn({out, in});
    const torch::Tensor norm = torch::rand({in}) * 10;
    const torch::Tensor scores = wanda_scores(w, norm, "l");
    for (double sparsity : {0.0, 0.3, 0.5, 0.7, 0.9}) {
      INFO("trial " << trial << " [" << out << ", " << in << "] sparsity " << sparsity);
      const torch::Tensor mask = mask_from_scores(scores, sparsity, MaskScope::kRow, {}, "l");
      CHECK(mask.logical_not().sum(1).eq(pruned_count(in, sparsity)).all().item<bool>());
      // What each row keeps scores at least as high as what it prunes.
      const torch::Tensor kept_min =
          std::get<0>(scores.masked_fill(mask.logical_not(), INFINITY).min(1));
      const torch::Tensor pruned_max = std::get<0>(scores.masked_fill(mask, -INFINITY).max(1));
      CHECK((kept_min >= pruned_max).all().item<bool>());
    }
    for (const SparsityPattern& pattern : {SparsityPattern{2, 4}, SparsityPattern{4, 8}}) {
      INFO("trial " << trial << " pattern " << pattern.n << ":" << pattern.m);
      const torch::Tensor mask = mask_from_scores(scores, 0, MaskScope::kRow, pattern, "l");
      CHECK(satisfies_pattern(mask, pattern));
    }
  }
}

TEST_CASE("wanda keeps a small weight on a loud input that magnitude prunes", "[unit]") {
  // |w| = 1 2 3 4; the first input is ten times louder than the others.
  const torch::Tensor w = matrix({1, -2, 3, -4}, 1, 4);
  const torch::Tensor norm = torch::tensor({10.0f, 1.0f, 1.0f, 1.0f});
  const torch::Tensor wanda =
      mask_from_scores(wanda_scores(w, norm, "l"), 0.5, MaskScope::kRow, {}, "l");
  const torch::Tensor magnitude = magnitude_mask(w, 0.5, MaskScope::kRow, {}, "l");
  CHECK(torch::equal(wanda, matrix({1, 0, 0, 1}, 1, 4).to(torch::kBool)));
  CHECK(torch::equal(magnitude, matrix({0, 0, 1, 1}, 1, 4).to(torch::kBool)));
  // The same under 2:4.
  CHECK(torch::equal(mask_from_scores(wanda_scores(w, norm, "l"), 0, MaskScope::kRow, {2, 4}, "l"),
                     wanda));
}

TEST_CASE("owl outlier ratios and layer sparsities equal a hand computation", "[unit]") {
  // M = 2. Layer a: mean 2, threshold 4, one of four above (5): 25 %. Layer b: none: 0 %.
  // Layer c, two linears taken together: mean 11.4 / 10 = 1.14, threshold 2.28, only the 6
  // above: 10 % (each alone would have one outlier: 20 %).
  const double a = owl_outlier_ratio({torch::tensor({1.0f, 1.0f, 1.0f, 5.0f})}, 2);
  const double b = owl_outlier_ratio({torch::ones({2, 2})}, 2);
  const double c = owl_outlier_ratio({torch::tensor({1.0f, 1.0f, 1.0f, 1.0f, 6.0f}),
                                      torch::tensor({0.1f, 0.1f, 0.1f, 0.1f, 1.0f})},
                                     2);
  CHECK(a == Approx(25.0));
  CHECK(b == 0.0);
  CHECK(c == Approx(10.0));

  // λ = 0.08: D/25·0.16 = (0.16, 0, 0.064), mean 0.224/3; s_l = 0.5 − (D_l − mean).
  const std::vector<double> sparsities = owl_layer_sparsities({a, b, c}, 0.5, 0.08);
  const double mean = 0.224 / 3;
  REQUIRE(sparsities.size() == 3);
  CHECK(sparsities[0] == Approx(0.5 - 0.16 + mean).margin(1e-12));
  CHECK(sparsities[1] == Approx(0.5 + mean).margin(1e-12));
  CHECK(sparsities[2] == Approx(0.5 - 0.064 + mean).margin(1e-12));
  CHECK((sparsities[0] + sparsities[1] + sparsities[2]) / 3 == Approx(0.5).margin(1e-12));

  // Equal ratios (upstream divides 0 by 0): every layer at the target.
  CHECK(owl_layer_sparsities({3.0, 3.0}, 0.6, 0.08) == std::vector<double>{0.6, 0.6});
  CHECK(owl_outlier_ratio({}, 5) == 0.0);
}

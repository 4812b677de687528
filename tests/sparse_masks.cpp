// The pruning-mask kernels (lib/sparse): patterns, the exact-count mask builder in every scope
// and N:M, magnitude and global magnitude with its floor, each against the sort-per-group loops
// of lib/sparse/reference.h mask for mask (ties included), and exact pruned counts per
// comparison group over random shapes and seeds.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/sparse/reference.h"
#include "lib/sparse/sparse.h"
#include "tests/catch_torch.h"
#include "tests/sparse_mask_cases.h"
#include "tests/user_error.h"

using namespace presso;
using namespace presso::test;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("sparsity patterns parse, print and round-trip", "[unit]") {
  CHECK(parse_sparsity_pattern("unstructured") == SparsityPattern{});
  CHECK(parse_sparsity_pattern("0:0") == SparsityPattern{});
  CHECK(parse_sparsity_pattern("2:4") == SparsityPattern{2, 4});
  CHECK(parse_sparsity_pattern("4:8") == SparsityPattern{4, 8});
  CHECK(parse_sparsity_pattern("1:4").sparsity() == 0.25);
  CHECK(parse_sparsity_pattern("3:8").sparsity() == 0.375);
  CHECK(SparsityPattern{}.sparsity() == 0.0);
  CHECK(sparsity_pattern_name({}) == "unstructured");
  CHECK(sparsity_pattern_name({2, 4}) == "2:4");
  for (const std::string text : {"unstructured", "2:4", "4:8", "1:4", "3:8", "15:16"}) {
    CHECK(sparsity_pattern_name(parse_sparsity_pattern(text)) == text);
  }
  CHECK_NOTHROW(validate_pattern({2, 4}, 4096, "w"));
  CHECK_NOTHROW(validate_pattern({}, 7, "w"));
}

TEST_CASE("bad sparsity patterns are user errors that quote the text", "[unit]") {
  for (const std::string text : {"4:4", "5:4", "0:4", "2:0", "2:", ":4", "a:b", "2:4:8", "", "-1:4",
                                 " 2:4", "2/4", "dense"}) {
    INFO(text);
    const std::string message = user_error_of([&] { parse_sparsity_pattern(text); });
    CHECK(contains(message, "'" + text + "'"));
  }
  CHECK(contains(user_error_of([] { parse_sparsity_pattern("4:4"); }), "1 <= N < M"));
  CHECK(contains(user_error_of([] { validate_pattern({0, 4}); }), "1 <= N < M"));
  const std::string message = user_error_of([] {
    validate_pattern({2, 4}, 18, "model.layers.0.mlp.up_proj.weight");
  });
  CHECK(contains(message, "tensor 'model.layers.0.mlp.up_proj.weight'"));
  CHECK(contains(message, "multiple of 4"));
  CHECK(contains(message, "18 columns"));
}

TEST_CASE("pruned counts are Python's int(n * s)", "[unit]") {
  CHECK(pruned_count(10, 0.5) == 5);
  CHECK(pruned_count(11, 0.5) == 5);
  CHECK(pruned_count(10, 0.7) == 7);     // 7.000000000000001
  CHECK(pruned_count(100, 0.29) == 28);  // 28.999999999999996, as int(100 * 0.29)
  CHECK(pruned_count(4096, 0.0) == 0);
  CHECK(pruned_count(3, 0.99) == 2);
  CHECK(pruned_count(0, 0.5) == 0);
}

TEST_CASE("masks from distinct scores equal the sorted reference in every scope", "[unit]") {
  std::mt19937 rng(1);
  int compared = 0;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    torch::manual_seed(static_cast<int64_t>(seed));
    const Shape s = random_shape(rng);
    const torch::Tensor scores = distinct_values(s, /*signs=*/false);
    for (const double sparsity : kSparsities) {
      for (const MaskScope scope : {MaskScope::kLayer, MaskScope::kRow}) {
        INFO(describe(s, sparsity, scope, {}, seed));
        const torch::Tensor fast = mask_from_scores(scores, sparsity, scope);
        const torch::Tensor ref = mask_from_scores_ref(scores, sparsity, scope);
        REQUIRE(fast.scalar_type() == torch::kBool);
        REQUIRE(fast.sizes() == scores.sizes());
        CHECK(differing(fast, ref) == 0);
        check_counts(fast, sparsity, scope, {});
        if (scope == MaskScope::kRow) CHECK(differing(fast, wanda_row_mask(scores, sparsity)) == 0);
        ++compared;
      }
    }
    for (const SparsityPattern& pattern : kPatterns) {
      INFO(describe(s, 0, MaskScope::kLayer, pattern, seed));
      // sparsity and scope are ignored under a pattern, even values that would be invalid
      const torch::Tensor fast = mask_from_scores(scores, 7.0, MaskScope::kRow, pattern);
      const torch::Tensor ref = mask_from_scores_ref(scores, 0.0, MaskScope::kLayer, pattern);
      CHECK(differing(fast, ref) == 0);
      check_counts(fast, 0, MaskScope::kLayer, pattern);
      CHECK(mask_sparsity(fast) == pattern.sparsity());
      ++compared;
    }
  }
  CHECK(compared == 12 * (2 * 8 + 4));
}

TEST_CASE("masks from heavily tied scores break ties by position, like the reference", "[unit]") {
  std::mt19937 rng(2);
  for (uint64_t seed = 0; seed < 12; ++seed) {
    torch::manual_seed(static_cast<int64_t>(100 + seed));
    const Shape s = random_shape(rng);
    const torch::Tensor weight = tied_values(s, /*signs=*/true);
    for (const double sparsity : kSparsities) {
      for (const MaskScope scope : {MaskScope::kLayer, MaskScope::kRow}) {
        INFO(describe(s, sparsity, scope, {}, seed));
        const torch::Tensor fast = magnitude_mask(weight, sparsity, scope);
        CHECK(differing(fast, magnitude_mask_ref(weight, sparsity, scope)) == 0);
        check_counts(fast, sparsity, scope, {});
        if (scope == MaskScope::kRow) {
          CHECK(differing(fast, wanda_row_mask(weight.abs(), sparsity)) == 0);
        }
      }
    }
    for (const SparsityPattern& pattern : kPatterns) {
      INFO(describe(s, 0, MaskScope::kLayer, pattern, seed));
      const torch::Tensor fast = magnitude_mask(weight, 0, MaskScope::kLayer, pattern);
      CHECK(differing(fast, magnitude_mask_ref(weight, 0, MaskScope::kLayer, pattern)) == 0);
      check_counts(fast, 0, MaskScope::kLayer, pattern);
    }
  }
  // All equal: the earliest positions go first.
  const torch::Tensor flat = torch::ones({2, 8});
  const torch::Tensor row = mask_from_scores(flat, 0.5, MaskScope::kRow);
  CHECK(row.narrow(1, 0, 4).logical_not().all().item<bool>());
  CHECK(row.narrow(1, 4, 4).all().item<bool>());
  const torch::Tensor layer = mask_from_scores(flat, 0.5, MaskScope::kLayer);
  CHECK(layer[0].logical_not().all().item<bool>());
  CHECK(layer[1].all().item<bool>());
  const torch::Tensor nm = mask_from_scores(flat, 0, MaskScope::kLayer, {2, 4});
  CHECK(torch::equal(nm[1], torch::tensor({0, 0, 1, 1, 0, 0, 1, 1}).to(torch::kBool)));
}

TEST_CASE("magnitude masks in fp16, bf16 and fp64 equal the fp32 mask of the same values",
          "[unit]") {
  torch::manual_seed(3);
  const torch::Tensor weight = torch::randn({24, 64}).to(torch::kBFloat16).to(torch::kFloat32);
  for (const MaskScope scope : {MaskScope::kLayer, MaskScope::kRow}) {
    const torch::Tensor expected = magnitude_mask(weight, 0.5, scope);
    for (const auto dtype : {torch::kBFloat16, torch::kFloat64}) {
      CHECK(torch::equal(magnitude_mask(weight.to(dtype), 0.5, scope), expected));
      CHECK(torch::equal(magnitude_mask_ref(weight.to(dtype), 0.5, scope), expected));
    }
  }
  const torch::Tensor half = torch::randn({16, 32}).to(torch::kHalf);
  CHECK(torch::equal(magnitude_mask(half, 0.0, MaskScope::kLayer, {2, 4}),
                     magnitude_mask(half.to(torch::kFloat32), 0.0, MaskScope::kLayer, {2, 4})));
}

TEST_CASE("layer magnitude prunes exactly int(numel * s), one fewer than wanda's threshold form",
          "[unit]") {
  // wanda's prune_magnitude: thresh = sort(|W|.flatten())[int(numel * s)]; prune |W| <= thresh.
  // With distinct values that prunes int(numel * s) + 1; ours prunes |W| < thresh.
  for (uint64_t seed = 0; seed < 5; ++seed) {
    torch::manual_seed(static_cast<int64_t>(seed));
    const torch::Tensor weight = distinct_values({16, 48}, /*signs=*/true);
    for (const double sparsity : {0.1, 0.5, 0.75}) {
      const int64_t k = pruned_count(weight.numel(), sparsity);
      const torch::Tensor thresh = std::get<0>(weight.abs().flatten().sort())[k];
      const torch::Tensor mask = magnitude_mask(weight, sparsity);
      CHECK(torch::equal(mask, weight.abs() >= thresh));
      CHECK((weight.abs() <= thresh).sum().item<int64_t>() == k + 1);
    }
  }
}

TEST_CASE("satisfies_pattern wants exactly N pruned in every group", "[unit]") {
  const torch::Tensor ok = torch::tensor({1, 0, 1, 0, 0, 0, 1, 1}).to(torch::kBool).reshape({1, 8});
  CHECK(satisfies_pattern(ok, {2, 4}));
  CHECK_FALSE(satisfies_pattern(ok, {1, 4}));
  CHECK(satisfies_pattern(ok, {4, 8}));  // 4 zeros in the one group of 8
  CHECK(satisfies_pattern(ok, {}));
  const torch::Tensor three =
      torch::tensor({0, 0, 0, 1, 1, 0, 1, 0}).to(torch::kBool).reshape({1, 8});
  CHECK_FALSE(satisfies_pattern(three, {2, 4}));               // 3 then 2: "at least" is not enough
  CHECK_FALSE(satisfies_pattern(ok.narrow(1, 0, 6), {2, 4}));  // width 6
  CHECK_FALSE(satisfies_pattern(ok.to(torch::kFloat32), {2, 4}));
  CHECK_FALSE(satisfies_pattern(ok.reshape({8}), {}));
  CHECK(satisfies_pattern(torch::ones({0, 8}, torch::kBool), {2, 4}));
  // Random masks of every pattern against the loop.
  std::mt19937 rng(4);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    torch::manual_seed(static_cast<int64_t>(seed));
    const Shape s = random_shape(rng);
    const SparsityPattern pattern = kPatterns[seed % kPatterns.size()];
    torch::Tensor mask = magnitude_mask(torch::randn({s.out, s.in}), 0, MaskScope::kLayer, pattern);
    CHECK(satisfies_pattern(mask, pattern) == satisfies_pattern_ref(mask, pattern));
    // one flipped entry breaks its group
    mask[s.out - 1][s.in - 1] = mask[s.out - 1][s.in - 1].logical_not();
    CHECK_FALSE(satisfies_pattern(mask, pattern));
    CHECK_FALSE(satisfies_pattern_ref(mask, pattern));
  }
}

TEST_CASE("mask_sparsity and apply_mask_ zero exactly the pruned weights, as +0", "[unit]") {
  CHECK(mask_sparsity(torch::ones({0, 4}, torch::kBool)) == 0.0);
  CHECK(mask_sparsity(torch::tensor({1, 0, 0, 0}).to(torch::kBool)) == 0.75);
  torch::manual_seed(5);
  torch::Tensor weight = torch::randn({8, 16});
  const torch::Tensor original = weight.clone();
  const torch::Tensor mask = magnitude_mask(weight, 0.5, MaskScope::kRow);
  apply_mask_(weight, mask);
  CHECK(torch::equal(weight.masked_select(mask), original.masked_select(mask)));
  const torch::Tensor pruned = weight.masked_select(mask.logical_not());
  CHECK(pruned.eq(0).all().item<bool>());
  CHECK_FALSE(pruned.signbit().any().item<bool>());
  CHECK(contains(user_error_of([&] { apply_mask_(weight, mask.t(), "w"); }), "tensor 'w'"));
}

TEST_CASE("global magnitude equals the reference and prunes the total exactly", "[unit]") {
  std::mt19937 rng(6);
  for (uint64_t seed = 0; seed < 16; ++seed) {
    torch::manual_seed(static_cast<int64_t>(seed));
    std::vector<torch::Tensor> weights;
    const int layers = 1 + static_cast<int>(seed % 5);
    for (int i = 0; i < layers; ++i) {
      const Shape s = random_shape(rng);
      // layers at scales e^±2 so some hit their floor; every third seed heavily tied
      const double scale = std::exp(std::uniform_real_distribution<double>(-2, 2)(rng));
      weights.push_back(seed % 3 == 2 ? tied_values(s, true) * (1 + i % 2)
                                      : torch::randn({s.out, s.in}) * scale);
    }
    int64_t total = 0;
    for (const auto& w : weights) total += w.numel();
    for (const double sparsity : {0.0, 0.3, 0.5, 0.8}) {
      for (const double min_keep : {0.0, 0.1, default_global_min_keep(sparsity), 0.5}) {
        INFO("seed " << seed << " layers " << layers << " sparsity " << sparsity << " min_keep "
                     << min_keep);
        int64_t prunable = 0;
        for (const auto& w : weights) prunable += pruned_count(w.numel(), 1 - min_keep);
        if (prunable < pruned_count(total, sparsity)) {
          CHECK(contains(
              user_error_of([&] { global_magnitude_masks(weights, sparsity, min_keep); }),
              "min_keep"));
          continue;
        }
        const auto fast = global_magnitude_masks(weights, sparsity, min_keep);
        const auto ref = global_magnitude_masks_ref(weights, sparsity, min_keep);
        REQUIRE(fast.size() == weights.size());
        int64_t pruned = 0;
        for (size_t i = 0; i < weights.size(); ++i) {
          REQUIRE(fast[i].sizes() == weights[i].sizes());
          CHECK(differing(fast[i], ref[i]) == 0);
          const int64_t layer_pruned = fast[i].logical_not().sum().item<int64_t>();
          CHECK(layer_pruned <= pruned_count(weights[i].numel(), 1 - min_keep));  // the floor
          pruned += layer_pruned;
        }
        CHECK(pruned == pruned_count(total, sparsity));
      }
    }
  }
}

TEST_CASE("global magnitude counts from streamed layers match the masks", "[unit]") {
  std::mt19937 rng(11);
  for (uint64_t seed = 0; seed < 6; ++seed) {
    torch::manual_seed(static_cast<int64_t>(seed));
    std::vector<torch::Tensor> weights;
    for (int i = 0; i < 4; ++i) {
      const Shape s = random_shape(rng);
      weights.push_back(seed % 2 ? tied_values(s, true) * (i + 1)
                                 : torch::randn({s.out, s.in}) * std::exp(i - 1.5));
    }
    for (const double min_keep : {0.0, default_global_min_keep(0.6)}) {
      size_t loads = 0;
      const std::vector<int64_t> counts = global_magnitude_counts(
          weights.size(),
          [&](size_t i) {
            ++loads;
            return weights[i];
          },
          0.6, min_keep);
      const auto masks = global_magnitude_masks_ref(weights, 0.6, min_keep);
      REQUIRE(counts.size() == weights.size());
      for (size_t i = 0; i < weights.size(); ++i) {
        CHECK(counts[i] == masks[i].logical_not().sum().item<int64_t>());
        // the documented use: each layer's own lowest |W|, ties by position
        const torch::Tensor own =
            lowest_k_per_row(weights[i].abs().reshape({1, -1}), counts[i]).logical_not();
        CHECK(torch::equal(own.view_as(weights[i]), masks[i]));
      }
      CHECK(loads <= 3 * weights.size());
    }
  }
}

TEST_CASE("global magnitude without a floor is layer magnitude on the concatenation", "[unit]") {
  std::mt19937 rng(7);
  for (uint64_t seed = 0; seed < 8; ++seed) {
    torch::manual_seed(static_cast<int64_t>(seed));
    std::vector<torch::Tensor> weights, flat;
    for (int i = 0; i < 3; ++i) {
      const Shape s = random_shape(rng);
      weights.push_back(seed % 2 ? tied_values(s, true) : torch::randn({s.out, s.in}));
      flat.push_back(weights.back().reshape({-1}));
    }
    const torch::Tensor all = torch::cat(flat).reshape({1, -1});
    for (const double sparsity : {0.2, 0.5, 0.9}) {
      const auto masks = global_magnitude_masks(weights, sparsity, 0.0);
      std::vector<torch::Tensor> pieces;
      for (const auto& m : masks) pieces.push_back(m.reshape({-1}));
      CHECK(torch::equal(torch::cat(pieces).reshape({1, -1}), magnitude_mask(all, sparsity)));
    }
    // one layer alone: plain layer magnitude
    CHECK(torch::equal(global_magnitude_masks({weights[0]}, 0.5, 0.0)[0],
                       magnitude_mask(weights[0], 0.5)));
  }
}

TEST_CASE("the global floor keeps a small layer alive and the others pay for it", "[unit]") {
  torch::manual_seed(8);
  // Layer 1 is 1000x smaller: plain global magnitude would prune all of it at 50 %.
  const std::vector<torch::Tensor> weights = {torch::randn({64, 64}), torch::randn({64, 64}) * 1e-3,
                                              torch::randn({32, 64})};
  const int64_t total = 64 * 64 * 2 + 32 * 64;
  const auto plain = global_magnitude_masks(weights, 0.5, 0.0);
  CHECK(plain[1].logical_not().all().item<bool>());
  const double min_keep = default_global_min_keep(0.5);  // 0.25
  CHECK(min_keep == 0.25);
  const auto floored = global_magnitude_masks(weights, 0.5, min_keep);
  const int64_t kept_small = floored[1].sum().item<int64_t>();
  CHECK(kept_small == 64 * 64 - pruned_count(64 * 64, 0.75));  // exactly at the floor: 1024
  // the small layer keeps its largest weights
  const torch::Tensor small = weights[1].abs();
  CHECK(small.masked_select(floored[1]).min().item<float>() >=
        small.masked_select(floored[1].logical_not()).max().item<float>());
  int64_t pruned = 0;
  for (const auto& m : floored) pruned += m.logical_not().sum().item<int64_t>();
  CHECK(pruned == total / 2);
  // what the floor saved came from the other layers, smallest first
  CHECK(floored[0].logical_not().sum().item<int64_t>() >
        plain[0].logical_not().sum().item<int64_t>());
  const auto ref = global_magnitude_masks_ref(weights, 0.5, min_keep);
  for (size_t i = 0; i < weights.size(); ++i) CHECK(torch::equal(floored[i], ref[i]));
}

TEST_CASE("bad mask inputs are user errors naming the tensor", "[unit]") {
  const torch::Tensor w = torch::randn({4, 16});
  const std::string name = "model.layers.3.mlp.up_proj.weight";
  for (const double sparsity : {-0.1, 1.0, 1.5, std::nan("")}) {
    const std::string message =
        user_error_of([&] { magnitude_mask(w, sparsity, MaskScope::kLayer, {}, name); });
    CHECK(contains(message, "tensor '" + name + "'"));
    CHECK(contains(message, "0 <= sparsity < 1"));
  }
  std::string message = user_error_of([&] {
    magnitude_mask(torch::randn({4, 18}), 0, MaskScope::kLayer, {2, 4}, name);
  });
  CHECK(contains(message, "tensor '" + name + "'"));
  CHECK(contains(message, "multiple of 4"));
  message = user_error_of([&] { magnitude_mask(w, 0, MaskScope::kLayer, {4, 4}, name); });
  CHECK(contains(message, "1 <= N < M"));
  message = user_error_of(
      [&] { magnitude_mask(torch::randn({64}), 0.5, MaskScope::kLayer, {}, name); });
  CHECK(contains(message, "2-d"));
  CHECK(contains(message, "[64]"));
  message = user_error_of([&] {
    mask_from_scores(torch::ones({4, 4}, torch::kInt64), 0.5, MaskScope::kRow, {}, name);
  });
  CHECK(contains(message, "floating-point"));
  torch::Tensor nan_weight = w.clone();
  nan_weight[1][2] = std::nanf("");
  message = user_error_of([&] { magnitude_mask(nan_weight, 0.5, MaskScope::kRow, {}, name); });
  CHECK(contains(message, "tensor '" + name + "'"));
  CHECK(contains(message, "1 NaN or infinite"));
  // global: the layer is named, and an unreachable floor says what would be valid
  message = user_error_of([&] {
    global_magnitude_masks({w, nan_weight}, 0.5, 0.1, {"a.weight", "b.weight"});
  });
  CHECK(contains(message, "tensor 'b.weight'"));
  message = user_error_of([&] { global_magnitude_masks({w, w}, 0.5, 0.6); });
  CHECK(contains(message, "min_keep 0.6"));
  CHECK(contains(message, "prunes 64"));
  CHECK(contains(message, "at most 50"));
  message = user_error_of([&] { global_magnitude_masks({w}, 0.5, 1.5); });
  CHECK(contains(message, "0 <= min_keep <= 1"));
  message = user_error_of([&] { global_magnitude_masks({w}, 1.0, 0.0); });
  CHECK(contains(message, "0 <= sparsity < 1"));
  CHECK_THROWS_AS(global_magnitude_masks({w}, 0.5, 0.1, {"a", "b"}), InternalError);
  // edge cases that are fine
  CHECK(global_magnitude_masks({}, 0.5, 0.1).empty());
  CHECK(magnitude_mask(torch::zeros({0, 8}), 0.5).sizes() == torch::IntArrayRef({0, 8}));
  CHECK(global_magnitude_masks({w}, 0.5, 0.5)[0].sum().item<int64_t>() == 32);  // floor = target
}

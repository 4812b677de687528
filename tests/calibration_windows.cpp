// Seeded window sampling: reproducible, slices of the stream, the same draw as PyTorch's.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "calibration/windows.h"
#include "lib/common/errors.h"

namespace {

std::vector<int32_t> iota_stream(int32_t n) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  // Distinct values far from their index, so a slice at the wrong offset cannot pass.
  for (int32_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = (i * 7919 + 13) % 100003;
  return tokens;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// What `torch.manual_seed(seed); torch.randint(0, high, (count,))` does in Python, on the global
// generator (which this test program may disturb).
std::vector<int64_t> python_style_randint(uint64_t seed, int64_t high, int64_t count) {
  torch::manual_seed(seed);
  return to_vector(torch::randint(0, high, {count}, torch::kInt64));
}

}  // namespace

TEST_CASE("the same seed draws the same windows and another seed other ones", "[unit]") {
  const std::vector<int32_t> tokens = iota_stream(5000);
  const torch::Tensor a = presso::sample_windows(tokens, 16, 64, 0);
  const torch::Tensor b = presso::sample_windows(tokens, 16, 64, 0);
  const torch::Tensor c = presso::sample_windows(tokens, 16, 64, 1);
  REQUIRE(a.sizes() == torch::IntArrayRef({16, 64}));
  REQUIRE(a.scalar_type() == torch::kInt64);
  CHECK(torch::equal(a, b));
  CHECK_FALSE(torch::equal(a, c));
}

TEST_CASE("windows are slices of the stream at starts below n - seqlen - 1", "[unit]") {
  const std::vector<int32_t> tokens = iota_stream(300);
  const int64_t seqlen = 40;
  const uint64_t seed = 1234;
  const torch::Tensor windows = presso::sample_windows(tokens, 200, seqlen, seed);
  const std::vector<int64_t> starts =
      to_vector(presso::sample_window_starts(300, 200, seqlen, seed));
  for (size_t i = 0; i < starts.size(); ++i) {
    INFO("window " << i << " start " << starts[i]);
    REQUIRE(starts[i] >= 0);
    REQUIRE(starts[i] < 300 - seqlen - 1);
    const std::vector<int64_t> row = to_vector(windows[static_cast<int64_t>(i)]);
    for (int64_t j = 0; j < seqlen; ++j)
      REQUIRE(row[static_cast<size_t>(j)] == tokens[static_cast<size_t>(starts[i] + j)]);
  }
}

TEST_CASE("window starts are torch.randint after torch.manual_seed", "[unit]") {
  for (uint64_t seed : {0ull, 1ull, 42ull, 1234567ull}) {
    for (int64_t n_tokens : {10ll, 1000ll, 262144ll, 5000000000ll}) {
      const int64_t seqlen = 8;
      INFO("seed " << seed << " n_tokens " << n_tokens);
      CHECK(to_vector(presso::sample_window_starts(n_tokens, 64, seqlen, seed)) ==
            python_style_randint(seed, n_tokens - seqlen - 1, 64));
    }
  }
}

TEST_CASE("sampling leaves the global generator alone", "[unit]") {
  torch::manual_seed(7);
  const torch::Tensor expected = torch::rand({4});
  torch::manual_seed(7);
  presso::sample_windows(iota_stream(100), 4, 10, 3);
  CHECK(torch::equal(torch::rand({4}), expected));
}

// Values drawn by this LibTorch; PyTorch's CPU randint is mt19937-based and stable across
// versions, so `torch.manual_seed(s); torch.randint(0, high, (count,))` in Python gives these.
TEST_CASE("window starts match recorded torch.randint values", "[unit]") {
  struct Case {
    uint64_t seed;
    int64_t high;
    int64_t count;
    std::vector<int64_t> first;
  };
  const std::vector<Case> cases = {
      {0, 1000, 8, {44, 239, 933, 760, 963, 379, 427, 503}},
      {0, 260000, 128, {236044, 68239, 74933, 133760, 28963, 128379, 255427, 218503}},
      {42, 1000, 8, {542, 67, 876, 414, 26, 335, 620, 924}},
      {42, 260000, 128, {17542, 46067, 246876, 46414, 230026, 207335, 78620, 111924}},
  };
  const int64_t seqlen = 2;
  for (const Case& c : cases) {
    // high = n_tokens - seqlen - 1
    std::vector<int64_t> starts =
        to_vector(presso::sample_window_starts(c.high + seqlen + 1, c.count, seqlen, c.seed));
    std::cout << "seed " << c.seed << ", randint(0, " << c.high << ", (" << c.count << ",))[:8] =";
    for (size_t i = 0; i < 8; ++i) std::cout << ' ' << starts[i];
    std::cout << '\n';
    REQUIRE(starts.size() == static_cast<size_t>(c.count));
    starts.resize(c.first.size());
    CHECK(starts == c.first);
  }
}

TEST_CASE("sampling rejects short streams and bad sizes with the numbers", "[unit]") {
  using Catch::Matchers::Contains;
  const std::vector<int32_t> tokens = iota_stream(100);
  // 100 tokens allow seqlen 98 (high = 1) but not 99 (high = 0).
  CHECK(presso::sample_windows(tokens, 3, 98, 0).size(1) == 98);
  REQUIRE_THROWS_AS(presso::sample_windows(tokens, 3, 99, 0), presso::UserError);
  CHECK_THROWS_WITH(presso::sample_windows(tokens, 3, 99, 0),
                    Contains("100 tokens") && Contains("101 are needed"));
  CHECK_THROWS_WITH(presso::sample_windows(tokens, 0, 10, 0), Contains("nsamples"));
  CHECK_THROWS_WITH(presso::sample_windows(tokens, 4, 1, 0), Contains("seqlen"));
  CHECK_THROWS_AS(presso::sample_windows({}, 1, 2, 0), presso::UserError);
}

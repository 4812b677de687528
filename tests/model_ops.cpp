// The shared block ops against slow per-head / per-element references.
#include "tests/catch_torch.h"
#include <cmath>
#include <limits>

#include "lib/model/config.h"
#include "lib/model/ops.h"

namespace {

// One head at a time, kv heads repeated as transformers' repeat_kv does.
torch::Tensor attention_ref(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& mask, double scale) {
  const int64_t heads = q.size(1), group = heads / k.size(1);
  std::vector<torch::Tensor> outputs;
  for (int64_t h = 0; h < heads; ++h) {
    auto qh = q.select(1, h), kh = k.select(1, h / group), vh = v.select(1, h / group);
    auto probs = torch::softmax(torch::matmul(qh, kh.transpose(-1, -2)) * scale + mask, -1);
    outputs.push_back(torch::matmul(probs, vh));  // [B, T, d]
  }
  return torch::cat(outputs, -1);  // [B, T, H * d], heads outermost
}

}  // namespace

TEST_CASE("the sliding mask keeps keys i - window < j <= i", "[unit]") {
  presso::ModelConfig config;
  presso::AttentionCache cache(config);
  const auto mask = cache.mask(6, 2, torch::kCPU);
  for (int64_t i = 0; i < 6; ++i) {
    for (int64_t j = 0; j < 6; ++j) {
      const bool visible = i - 2 < j && j <= i;
      CHECK((mask[i][j].item<float>() == 0.0f) == visible);
    }
  }
  const auto full = cache.mask(6, 0, torch::kCPU);
  CHECK(full[5][0].item<float>() == 0.0f);
  CHECK(full[0][1].item<float>() == -std::numeric_limits<float>::infinity());
}

TEST_CASE("grouped attention equals the per-head reference", "[unit]") {
  torch::manual_seed(1);
  presso::ModelConfig config;
  presso::AttentionCache cache(config);
  for (int64_t kv_heads : {1, 2, 3, 6}) {
    for (int64_t window : {0, 3}) {
      CAPTURE(kv_heads, window);
      auto q = torch::randn({2, 6, 7, 8}), k = torch::randn({2, kv_heads, 7, 8});
      auto v = torch::randn({2, kv_heads, 7, 8});
      const auto& mask = cache.mask(7, window, torch::kCPU);
      auto fast = presso::causal_attention(q, k, v, mask, 0.3, 0);
      auto slow = attention_ref(q, k, v, mask, 0.3);
      CHECK((fast - slow).abs().max().item<double>() < 1e-5);
    }
  }
}

TEST_CASE("llama3 rope frequencies follow the scalar formula", "[unit]") {
  presso::RopeConfig rope;
  rope.type = presso::RopeType::kLlama3;
  rope.theta = 500000.0;
  rope.factor = 8.0;
  rope.low_freq_factor = 1.0;
  rope.high_freq_factor = 4.0;
  rope.original_max_position_embeddings = 32;
  const int64_t dim = 16;
  const auto inv_freq = presso::rope_inv_freq(rope, dim);
  const double low_wavelen = 32 / 1.0, high_wavelen = 32 / 4.0;
  for (int64_t i = 0; i < dim / 2; ++i) {
    const double base = 1.0 / std::pow(500000.0, 2.0 * i / dim);
    const double wavelen = 2 * M_PI / base;
    double expected = base;
    if (wavelen > low_wavelen) {
      expected = base / 8.0;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (32 / wavelen - 1.0) / (4.0 - 1.0);
      expected = (1 - smooth) * base / 8.0 + smooth * base;
    }
    CAPTURE(i);
    CHECK(inv_freq[i].item<double>() == Approx(expected).epsilon(1e-5));
  }
  rope.type = presso::RopeType::kLinear;
  rope.factor = 2.0;
  presso::RopeConfig plain;
  plain.theta = 500000.0;
  CHECK(torch::allclose(presso::rope_inv_freq(rope, dim), presso::rope_inv_freq(plain, dim) / 2));
}

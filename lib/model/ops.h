// lib/model: the tensor operations the block forwards share, each matching transformers' fp32
// eager path. All take and return fp32 tensors on the weights' device.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "lib/model/block.h"
#include "lib/model/config.h"

namespace presso {

// Additive causal masks and rope tables, computed once per sequence length (and device) and
// reused by every block. Not thread-safe: one forward at a time per Model.
class AttentionCache {
 public:
  explicit AttentionCache(const ModelConfig& config) : config_(config) {}
  // [T, T], 0 where query i may see key j (i - window < j <= i; window 0 = no limit), else -inf.
  const torch::Tensor& mask(int64_t seq_len, int64_t window, torch::Device device);
  // cos and sin [T, rotary_dim] for positions 0..T-1 (LlamaRotaryEmbedding).
  const std::pair<torch::Tensor, torch::Tensor>& rope(int64_t seq_len, torch::Device device);
  void clear();

 private:
  const ModelConfig& config_;
  std::map<std::tuple<int64_t, int64_t, std::string>, torch::Tensor> masks_;
  std::map<std::pair<int64_t, std::string>, std::pair<torch::Tensor, torch::Tensor>> ropes_;
};

// inv_freq [head_dim / 2] after the rope type's scaling (modeling_rope_utils.py).
torch::Tensor rope_inv_freq(const RopeConfig& rope, int64_t head_dim);

// LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, in fp32.
torch::Tensor rms_norm(const torch::Tensor& x, const Norm& norm, double eps);
torch::Tensor layer_norm(const torch::Tensor& x, const Norm& norm, double eps);
torch::Tensor activate(const torch::Tensor& x, Activation activation);

// Calls the hook with the linear's full name and input, then returns x W^T + b, plus
// (x Aᵀ) Bᵀ when the linear has a low-rank path.
torch::Tensor run_linear(const Linear& linear, const torch::Tensor& x, const LinearHook* hook);

// x [B, heads, T, d]; cos/sin [T, d]: x * cos + rotate_half(x) * sin (apply_rotary_pos_emb).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin);

// Scaled dot-product attention with an additive mask and grouped-query heads (head h reads kv
// head h / (heads / kv_heads), as transformers' repeat_kv). q [B, H, T, d], k/v [B, KV, T, d],
// mask [T, T] (AttentionCache::mask with `window`, 0 for none); returns [B, T, H * d]. Softmax
// once per batch chunk over [.., T, T].
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& mask, double scale,
                               int64_t window);

}  // namespace presso

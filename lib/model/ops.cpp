#include "lib/model/ops.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "lib/common/errors.h"

namespace presso {
namespace {

// Score elements computed at once by causal_attention: 2^27 floats = 512 MiB. Longer batches are
// split along the batch so calibration at seqlen 2048 does not need B * H * T * T floats at once.
constexpr int64_t kMaxScoreElements = int64_t{1} << 27;

torch::Tensor optional_or_undefined(const std::optional<torch::Tensor>& t) {
  return t ? *t : torch::Tensor();
}

}  // namespace

const torch::Tensor& AttentionCache::mask(int64_t seq_len, int64_t window, torch::Device device) {
  auto key = std::make_tuple(seq_len, window, device.str());
  auto it = masks_.find(key);
  if (it != masks_.end()) return it->second;
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto i = torch::arange(seq_len, opts).unsqueeze(1);
  auto j = torch::arange(seq_len, opts).unsqueeze(0);
  auto allowed = j.le(i);
  // transformers' sliding_window_overlay keeps kv_idx > q_idx - sliding_window.
  if (window > 0) allowed = allowed.logical_and(j.gt(i - window));
  auto mask = torch::zeros({seq_len, seq_len}, torch::TensorOptions().device(device))
                  .masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  return masks_.emplace(key, mask).first->second;
}

const std::pair<torch::Tensor, torch::Tensor>& AttentionCache::rope(int64_t seq_len,
                                                                    torch::Device device) {
  if (!config_.rope) fail_internal("rope table requested for {} which has no rope", config_.path);
  auto key = std::make_pair(seq_len, device.str());
  auto it = ropes_.find(key);
  if (it != ropes_.end()) return it->second;
  // LlamaRotaryEmbedding: freqs = positions (x) inv_freq in fp32, emb = cat(freqs, freqs).
  auto inv_freq = rope_inv_freq(*config_.rope, config_.head_dim).to(device);
  auto positions = torch::arange(seq_len, torch::TensorOptions().device(device)).to(torch::kFloat);
  auto freqs = torch::outer(positions, inv_freq);
  auto emb = torch::cat({freqs, freqs}, -1);
  return ropes_.emplace(key, std::make_pair(emb.cos(), emb.sin())).first->second;
}

void AttentionCache::clear() {
  masks_.clear();
  ropes_.clear();
}

torch::Tensor rope_inv_freq(const RopeConfig& rope, int64_t head_dim) {
  // _compute_default_rope_parameters: 1 / theta^(2i / d), exponent in fp32.
  auto exponent =
      torch::arange(0, head_dim, 2, torch::kLong).to(torch::kFloat) / static_cast<double>(head_dim);
  auto inv_freq = 1.0 / torch::pow(rope.theta, exponent);
  switch (rope.type) {
    case RopeType::kDefault:
      return inv_freq;
    case RopeType::kLinear:
      // _compute_linear_scaling_rope_parameters divides inv_freq (equivalently the positions).
      return inv_freq / rope.factor;
    case RopeType::kLlama3: {
      // _compute_llama3_parameters: long wavelengths are slowed by `factor`, short ones kept,
      // and the band between the two wavelength bounds interpolated smoothly.
      const double old_len = static_cast<double>(rope.original_max_position_embeddings);
      const double low_wavelen = old_len / rope.low_freq_factor;
      const double high_wavelen = old_len / rope.high_freq_factor;
      auto wavelen = 2.0 * M_PI / inv_freq;
      auto scaled = torch::where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq);
      auto smooth = (old_len / wavelen - rope.low_freq_factor) /
                    (rope.high_freq_factor - rope.low_freq_factor);
      auto smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
      auto medium = wavelen.ge(high_wavelen).logical_and(wavelen.le(low_wavelen));
      return torch::where(medium, smoothed, scaled);
    }
  }
  fail_internal("unhandled rope type {}", static_cast<int>(rope.type));
}

torch::Tensor rms_norm(const torch::Tensor& x, const Norm& norm, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * norm.weight;
}

torch::Tensor layer_norm(const torch::Tensor& x, const Norm& norm, double eps) {
  return torch::layer_norm(x, {x.size(-1)}, norm.weight, optional_or_undefined(norm.bias), eps);
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::kSilu:
      return torch::silu(x);
    case Activation::kRelu:
      return torch::relu(x);
    case Activation::kGelu:
      return torch::gelu(x);
    case Activation::kGeluTanh:
      // gelu_new (NewGELUActivation) and gelu_pytorch_tanh are both the tanh approximation.
      return torch::gelu(x, "tanh");
  }
  fail_internal("unhandled activation {}", static_cast<int>(activation));
}

torch::Tensor run_linear(const Linear& linear, const torch::Tensor& x, const LinearHook* hook) {
  if (hook != nullptr && *hook) (*hook)(linear.name, x);
  torch::Tensor y = torch::linear(x, linear.weight, optional_or_undefined(linear.bias));
  if (linear.lowrank) {
    y = y + torch::linear(torch::linear(x, linear.lowrank->a), linear.lowrank->b);
  }
  return y;
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& mask, double scale,
                               int64_t window) {
  const int64_t batch = q.size(0), heads = q.size(1), seq = q.size(2), dim = q.size(3);
  const int64_t kv_heads = k.size(1);
  TORCH_CHECK(k.dim() == 4 && v.sizes() == k.sizes() && k.size(0) == batch && k.size(2) == seq &&
                  k.size(3) == dim && kv_heads > 0 && heads % kv_heads == 0,
              "causal_attention: q ", q.sizes(), " does not fit k ", k.sizes(), " / v ", v.sizes());
#if TORCH_VERSION_MAJOR >= 2
  // On a GPU, LibTorch 2's fused attention (its memory-efficient kernel in fp32) never writes the
  // [T, T] scores to memory, and without a sliding window it skips the masked half: 2x faster
  // than the products and softmax below on a 7B block at 2048 tokens. The same arithmetic up to
  // summation order; LibTorch 1.13 has no such kernel.
  if (q.is_cuda() && kv_heads == heads) {
    const torch::Tensor fused =
        window == 0 ? at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true, scale)
                    : at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, scale);
    return fused.transpose(1, 2).reshape({batch, seq, heads * dim});
  }
#else
  (void)window;
#endif
  const int64_t group = heads / kv_heads;
  // Heads sharing a kv head are stacked along the query axis, so one batched matmul per kv head
  // serves the whole group without materialising repeat_kv's copies of k and v.
  auto grouped = q.reshape({batch, kv_heads, group * seq, dim});
  const int64_t chunk = std::max<int64_t>(1, kMaxScoreElements / (heads * seq * seq));
  std::vector<torch::Tensor> outputs;
  for (int64_t start = 0; start < batch; start += chunk) {
    const int64_t n = std::min(chunk, batch - start);
    auto scores =
        torch::matmul(grouped.narrow(0, start, n), k.narrow(0, start, n).transpose(-1, -2));
    if (scale != 1.0) scores.mul_(scale);
    scores = scores.view({n, kv_heads, group, seq, seq});
    scores.add_(mask);
    auto probs = torch::softmax(scores, -1).view({n, kv_heads, group * seq, seq});
    outputs.push_back(torch::matmul(probs, v.narrow(0, start, n)));
  }
  auto out = outputs.size() == 1 ? outputs[0] : torch::cat(outputs, 0);
  // [B, KV, g * T, d] -> [B, H, T, d] -> [B, T, H * d]
  return out.view({batch, heads, seq, dim}).transpose(1, 2).reshape({batch, seq, heads * dim});
}

}  // namespace presso

#include "lib/quant/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "lib/common/errors.h"

namespace presso {
namespace {

// Words as uint32 in row-major order, turned into an int32 tensor of the same bit patterns.
torch::Tensor words_tensor(const std::vector<uint32_t>& words, int64_t rows, int64_t cols) {
  std::vector<int32_t> bits(words.begin(), words.end());
  return torch::from_blob(bits.data(), {rows, cols}, torch::kInt32).clone();
}

// Sets bits [pos, pos + bits) of the bit string whose word k is word(k), LSB first.
template <typename WordAt>
void put_bits(WordAt word, int64_t pos, uint32_t value, int bits) {
  for (int j = 0; j < bits; ++j) {
    if ((value >> j) & 1u) word((pos + j) / 32) |= uint32_t{1} << ((pos + j) % 32);
  }
}

template <typename WordAt>
uint32_t get_bits(WordAt word, int64_t pos, int bits) {
  uint32_t value = 0;
  for (int j = 0; j < bits; ++j) {
    value |= ((static_cast<uint32_t>(word((pos + j) / 32)) >> ((pos + j) % 32)) & 1u) << j;
  }
  return value;
}

float quantize_one(float x, float scale, int32_t zero_point, int bits) {
  const float v = x / scale + static_cast<float>(zero_point);
  return std::nearbyint(std::min(std::max(v, static_cast<float>(quant_min(bits))),
                                 static_cast<float>(quant_max(bits))));
}

}  // namespace

torch::Tensor pack_lsb_first_ref(const torch::Tensor& values, int bits) {
  const torch::Tensor v = values.to(torch::kLong).contiguous();
  const int64_t rows = v.size(0);
  const int64_t n = v.size(1);
  const int64_t cols = (n * bits + 31) / 32;
  std::vector<uint32_t> words(rows * cols, 0);
  const int64_t* data = v.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      put_bits([&](int64_t k) -> uint32_t& { return words[r * cols + k]; }, i* bits,
               static_cast<uint32_t>(data[r * n + i]), bits);
    }
  }
  return words_tensor(words, rows, cols);
}

torch::Tensor unpack_lsb_first_ref(const torch::Tensor& words, int bits, int64_t count) {
  const torch::Tensor w = words.contiguous();
  const int64_t rows = w.size(0);
  const int64_t cols = w.size(1);
  const int32_t* data = w.data_ptr<int32_t>();
  torch::Tensor values = torch::empty({rows, count}, torch::kInt32);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < count; ++i) {
      values[r][i] = static_cast<int64_t>(
          get_bits([&](int64_t k) { return data[r * cols + k]; }, i * bits, bits));
    }
  }
  return values;
}

QuantGrid compute_grid_ref(const torch::Tensor& weight, const QuantScheme& scheme,
                           const GridOptions& options) {
  const torch::Tensor w = weight.to(torch::kFloat32).contiguous();
  const int64_t out = w.size(0);
  const int64_t in = w.size(1);
  const int64_t gs = effective_group_size(scheme, in);
  const int64_t groups = in / gs;
  const group_grid::GridRule rule = group_grid_rule(scheme, options);
  const float* x = w.data_ptr<float>();
  std::vector<float> min(out * groups), max(out * groups);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const float* begin = x + r * in + g * gs;
      min[r * groups + g] = *std::min_element(begin, begin + gs);
      max[r * groups + g] = *std::max_element(begin, begin + gs);
    }
  }
  std::vector<float> best_min = min, best_max = max;
  if (options.mse) {
    const MseSearch& mse = *options.mse;
    std::vector<double> best_error(out * groups, std::numeric_limits<double>::infinity());
    int steps_without_gain = 0;
    for (int i = 0; i < static_cast<int>(mse.maxshrink * mse.grid); ++i) {
      const float p = static_cast<float>(1.0 - i / mse.grid);
      bool any_gain = false;
      for (int64_t r = 0; r < out; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          const int64_t k = r * groups + g;
          const group_grid::Grid cand = group_grid::grid_from_range(min[k] * p, max[k] * p, rule);
          double error = 0;
          for (int64_t c = g * gs; c < (g + 1) * gs; ++c) {
            const float q = quantize_one(x[r * in + c], cand.scale,
                                         static_cast<int32_t>(cand.zero), scheme.bits);
            const float dq = (q - cand.zero) * cand.scale;
            error += std::pow(std::fabs(static_cast<double>(dq) - x[r * in + c]), mse.norm);
          }
          if (error < best_error[k]) {
            best_error[k] = error;
            best_min[k] = min[k] * p;
            best_max[k] = max[k] * p;
            any_gain = true;
          }
        }
      }
      steps_without_gain = any_gain ? 0 : steps_without_gain + 1;
      if (mse.patience > 0 && steps_without_gain >= mse.patience) break;
    }
  }
  QuantGrid grid{torch::empty({out, groups}, torch::kFloat32),
                 torch::empty({out, groups}, torch::kInt32)};
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const group_grid::Grid gg =
          group_grid::grid_from_range(best_min[r * groups + g], best_max[r * groups + g], rule);
      grid.scale[r][g] = gg.scale;
      grid.zero_point[r][g] = static_cast<int32_t>(gg.zero);
    }
  }
  return grid;
}

QuantizedWeight quantize_ref(const torch::Tensor& weight, const QuantGrid& grid,
                             const QuantScheme& scheme, const std::optional<torch::Tensor>& g_idx) {
  const int64_t out = weight.size(0);
  const int64_t in = weight.size(1);
  const int64_t gs = effective_group_size(scheme, in);
  const auto x = weight.to(torch::kFloat32).contiguous();
  const auto scale = grid.scale.to(torch::kFloat32).contiguous();
  const auto zero = grid.zero_point.to(torch::kInt32).contiguous();
  const auto gi = g_idx ? g_idx->to(torch::kLong).contiguous() : torch::Tensor();
  const int64_t groups = scale.size(1);
  torch::Tensor q = torch::empty({out, in}, torch::kInt8);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t c = 0; c < in; ++c) {
      const int64_t g = g_idx ? gi.data_ptr<int64_t>()[c] : c / gs;
      q[r][c] = static_cast<int64_t>(
          quantize_one(x.data_ptr<float>()[r * in + c], scale.data_ptr<float>()[r * groups + g],
                       zero.data_ptr<int32_t>()[r * groups + g], scheme.bits));
    }
  }
  std::optional<torch::Tensor> kept;
  if (g_idx) kept = g_idx->to(torch::kInt32);
  return {q, scale, zero, kept, scheme};
}

torch::Tensor dequantize_ref(const QuantizedWeight& weight) {
  const int64_t out = weight.q.size(0);
  const int64_t in = weight.q.size(1);
  const int64_t gs = effective_group_size(weight.scheme, in);
  const torch::Tensor g_idx = weight.g_idx ? weight.g_idx->to(torch::kLong) : torch::Tensor();
  const auto q = weight.q.accessor<int8_t, 2>();
  const auto zero = weight.zero_point.accessor<int32_t, 2>();
  const auto scale = weight.scale.accessor<float, 2>();
  torch::Tensor result = torch::empty({out, in}, torch::kFloat32);
  auto res = result.accessor<float, 2>();
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t c = 0; c < in; ++c) {
      const int64_t g = weight.g_idx ? g_idx.data_ptr<int64_t>()[c] : c / gs;
      res[r][c] = (static_cast<float>(q[r][c]) - static_cast<float>(zero[r][g])) * scale[r][g];
    }
  }
  return result;
}

CompressedTensorsPacked pack_compressed_tensors_ref(const QuantizedWeight& weight,
                                                    torch::ScalarType scale_dtype) {
  const auto q = weight.q.accessor<int8_t, 2>();
  const auto zero = weight.zero_point.accessor<int32_t, 2>();
  const int bits = weight.scheme.bits;
  const int64_t out = weight.q.size(0);
  const int64_t in = weight.q.size(1);
  const int64_t groups = weight.scale.size(1);
  const int64_t offset = unsigned_offset(bits);
  const int64_t row_words = (in * bits + 31) / 32;
  std::vector<uint32_t> packed(out * row_words, 0);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t c = 0; c < in; ++c) {
      put_bits([&](int64_t k) -> uint32_t& { return packed[r * row_words + k]; }, c* bits,
               static_cast<uint32_t>(q[r][c] + offset), bits);
    }
  }
  CompressedTensorsPacked result;
  result.weight_packed = words_tensor(packed, out, row_words);
  result.weight_scale = weight.scale.to(scale_dtype);
  if (!weight.scheme.symmetric) {
    const int64_t zero_words = (out * bits + 31) / 32;
    std::vector<uint32_t> zeros(zero_words * groups, 0);
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t r = 0; r < out; ++r) {  // down column g of [ceil(out·b/32), n_groups]
        put_bits([&](int64_t k) -> uint32_t& { return zeros[k * groups + g]; }, r* bits,
                 static_cast<uint32_t>(zero[r][g] + offset), bits);
      }
    }
    result.weight_zero_point = words_tensor(zeros, zero_words, groups);
  }
  result.weight_shape = torch::tensor({out, in}, torch::kLong);
  if (weight.g_idx) result.weight_g_idx = weight.g_idx->to(torch::kInt32);
  return result;
}

GptqPacked pack_gptq_v1_ref(const QuantizedWeight& weight) {
  const auto q = weight.q.accessor<int8_t, 2>();
  const auto zero = weight.zero_point.accessor<int32_t, 2>();
  const int bits = weight.scheme.bits;
  const int64_t out = weight.q.size(0);
  const int64_t in = weight.q.size(1);
  const int64_t groups = weight.scale.size(1);
  const int64_t offset = unsigned_offset(bits);
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  std::vector<uint32_t> qweight(in * bits / 32 * out, 0);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t c = 0; c < in; ++c) {  // down column r of [in·b/32, out]
      put_bits([&](int64_t k) -> uint32_t& { return qweight[k * out + r]; }, c* bits,
               static_cast<uint32_t>(q[r][c] + offset), bits);
    }
  }
  std::vector<uint32_t> qzeros(groups * (out * bits / 32), 0);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t r = 0; r < out; ++r) {  // along row g of [n_groups, out·b/32], storing z − 1
      const int64_t z = zero[r][g] + offset;
      put_bits([&](int64_t k) -> uint32_t& { return qzeros[g * (out * bits / 32) + k]; }, r* bits,
               static_cast<uint32_t>(z - 1) & mask, bits);
    }
  }
  const int64_t gs = effective_group_size(weight.scheme, in);
  torch::Tensor g_idx = torch::empty({in}, torch::kInt32);
  for (int64_t c = 0; c < in; ++c) {
    g_idx[c] = weight.g_idx ? (*weight.g_idx)[c].item<int64_t>() : c / gs;
  }
  return {words_tensor(qweight, in * bits / 32, out), words_tensor(qzeros, groups, out * bits / 32),
          weight.scale.t().to(torch::kFloat16).contiguous(), g_idx};
}

AwqPacked pack_awq_gemm_ref(const QuantizedWeight& weight) {
  const auto q = weight.q.accessor<int8_t, 2>();
  const auto zero = weight.zero_point.accessor<int32_t, 2>();
  const int64_t out = weight.q.size(0);
  const int64_t in = weight.q.size(1);
  const int64_t groups = weight.scale.size(1);
  const int nibble_of_column[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // inverse of [0, 2, 4, 6, 1, 3, 5, 7]
  const auto pack = [&](int64_t rows, auto value_at) {
    std::vector<uint32_t> words(rows * (out / 8), 0);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t c = 0; c < out; ++c) {
        const uint32_t u = static_cast<uint32_t>(value_at(i, c) + 8);
        words[i * (out / 8) + c / 8] |= u << (4 * nibble_of_column[c % 8]);
      }
    }
    return words_tensor(words, rows, out / 8);
  };
  return {pack(in, [&](int64_t i, int64_t c) { return q[c][i]; }),
          pack(groups, [&](int64_t g, int64_t c) { return zero[c][g]; }),
          weight.scale.t().to(torch::kFloat16).contiguous()};
}

GptqResult gptq_quantize_ref(const torch::Tensor& weight, const torch::Tensor& hessian,
                             const GptqOptions& options, const std::optional<torch::Tensor>& mask,
                             torch::Tensor* tie_distance) {
  torch::NoGradGuard no_grad;
  const QuantScheme& scheme = options.scheme;
  const bool quantize = options.quantize;
  const SweepPruning& pruning = options.pruning;
  torch::Tensor w = weight.to(torch::kCPU, torch::kFloat32).contiguous().clone();
  torch::Tensor h = hessian.to(torch::kCPU, torch::kFloat32).contiguous().clone();
  const int64_t out = w.size(0);
  const int64_t in = w.size(1);
  const int64_t gs = quantize ? effective_group_size(scheme, in) : in;
  const int64_t groups = in / gs;
  const bool per_channel = quantize && scheme.group_size == -1;
  const bool dynamic_groups = quantize && !per_channel && !options.static_groups;
  const torch::Tensor keep = mask ? mask->to(torch::kCPU).to(torch::kBool).contiguous()
                                  : torch::ones({out, in}, torch::kBool);
  const auto kept = [](const torch::Tensor& x, const torch::Tensor& k) {
    return torch::where(k, x, torch::zeros_like(x));
  };
  auto W = w.accessor<float, 2>();
  auto H = h.accessor<float, 2>();

  // Dead inputs; the per-channel grid is found before their weights are zeroed, static groups
  // after.
  std::vector<bool> dead(in, false);
  for (int64_t j = 0; j < in; ++j) {
    if (H[j][j] == 0) {
      dead[j] = true;
      H[j][j] = 1;
    }
  }
  QuantGrid grid;
  if (per_channel) grid = compute_grid_ref(kept(w, keep), scheme, options.grid);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t j = 0; j < in; ++j) {
      if (dead[j]) W[r][j] = 0;
    }
  }
  if (quantize && !per_channel && options.static_groups) {
    grid = compute_grid_ref(kept(w, keep), scheme, options.grid);
  }

  // Visiting order: decreasing diag H, ties in column order.
  std::vector<int64_t> order(in);
  std::iota(order.begin(), order.end(), 0);
  if (options.act_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return H[a][a] > H[b][b]; });
  }
  torch::Tensor wp = torch::empty({out, in}, torch::kFloat32);
  torch::Tensor kp = torch::empty({out, in}, torch::kBool);
  torch::Tensor hp = torch::empty({in, in}, torch::kFloat32);
  auto WP = wp.accessor<float, 2>();
  auto KP = kp.accessor<bool, 2>();
  auto HP = hp.accessor<float, 2>();
  const auto K = keep.accessor<bool, 2>();
  for (int64_t p = 0; p < in; ++p) {
    for (int64_t r = 0; r < out; ++r) {
      WP[r][p] = W[r][order[p]];
      KP[r][p] = K[r][order[p]];
    }
    for (int64_t c = 0; c < in; ++c) HP[p][c] = H[order[p]][order[c]];
  }

  // Damping, raised tenfold until H and H⁻¹ both factor.
  const torch::Tensor mean_diagonal = hp.diagonal().mean();
  double fraction = options.damp;
  int retries = 0;
  torch::Tensor upper;
  for (;;) {
    torch::Tensor damped = hp.clone();
    damped.diagonal().add_(mean_diagonal * fraction);
    auto [lower, info] = torch::linalg_cholesky_ex(damped);
    if (info.item<int64_t>() == 0) {
      auto [u, info_upper] = torch::linalg_cholesky_ex(torch::cholesky_inverse(lower), true);
      if (info_upper.item<int64_t>() == 0 && torch::isfinite(u).all().item<bool>()) {
        upper = u;
        break;
      }
    }
    if (retries == options.max_damp_retries) {
      fail_user("gptq_quantize_ref: the Hessian does not factor even with damp {}", fraction);
    }
    ++retries;
    fraction = fraction > 0 ? fraction * 10 : 0.01;
  }
  const auto U = upper.accessor<float, 2>();

  std::vector<float> scale(out * groups, 0.0f);
  std::vector<int32_t> zero(out * groups, 0);
  if (quantize && !dynamic_groups) {
    const auto s = grid.scale.accessor<float, 2>();
    const auto z = grid.zero_point.accessor<int32_t, 2>();
    for (int64_t r = 0; r < out; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        scale[r * groups + g] = s[r][g];
        zero[r * groups + g] = z[r][g];
      }
    }
  }
  torch::Tensor codes = torch::empty({out, in}, torch::kInt8);
  torch::Tensor dequantized = torch::empty({out, in}, torch::kFloat32);
  torch::Tensor ties = torch::zeros({out, in}, torch::kFloat32);
  auto C = codes.accessor<int8_t, 2>();
  auto D = dequantized.accessor<float, 2>();
  auto T = ties.accessor<float, 2>();
  const float qmin = static_cast<float>(quant_min(scheme.bits));
  const float qmax = static_cast<float>(quant_max(scheme.bits));
  torch::Tensor block_start;  // the weights when the current block began
  double loss = 0;
  for (int64_t p = 0; p < in; ++p) {
    if (p % options.block_size == 0) {
      block_start = wp.clone();
      if (pruning.block_mask) {
        const int64_t p2 = std::min(p + options.block_size, in);
        kp.slice(1, p, p2).copy_(
            pruning.block_mask(block_start.slice(1, p, p2), upper.diagonal().slice(0, p, p2)));
      }
    }
    int64_t g = 0;
    if (dynamic_groups) {
      g = p / gs;
      if (p % gs == 0) {
        const QuantGrid fresh = compute_grid_ref(
            kept(block_start.slice(1, p, p + gs), kp.slice(1, p, p + gs)),
            QuantScheme{scheme.bits, static_cast<int>(gs), scheme.symmetric}, options.grid);
        for (int64_t r = 0; r < out; ++r) {
          scale[r * groups + g] = fresh.scale[r][0].item<float>();
          zero[r * groups + g] = fresh.zero_point[r][0].item<int32_t>();
        }
      }
    } else if (!per_channel) {
      g = order[p] / gs;
    }
    // After the group's grid, which sees only the choices already made (as the sweeps do).
    if (pruning.n > 0 && p % pruning.m == 0) {
      // Each row: the n lowest w²/U_jj² of columns [p, p + m) as they stand, earlier on ties.
      for (int64_t r = 0; r < out; ++r) {
        std::vector<std::pair<float, int64_t>> scored;
        for (int64_t j = p; j < p + pruning.m; ++j) {
          scored.push_back({WP[r][j] * WP[r][j] / (U[j][j] * U[j][j]), j});
        }
        std::sort(scored.begin(), scored.end());
        for (int64_t t = 0; t < pruning.m; ++t) KP[r][scored[t].second] = t >= pruning.n;
      }
    }
    const int64_t column = order[p];
    const float d = U[p][p];
    for (int64_t r = 0; r < out; ++r) {
      const float x = WP[r][p];
      if (!quantize) {
        // Pruning alone: a kept weight stays as it is, a pruned one goes to 0.
        const float e = (KP[r][p] ? 0.0f : x) / d;
        loss += static_cast<double>(e) * e;
        D[r][column] = KP[r][p] ? x : 0.0f;
        for (int64_t j = p + 1; j < in; ++j) WP[r][j] -= e * U[p][j];
        continue;
      }
      const float s = scale[r * groups + g];
      const int32_t z = zero[r * groups + g];
      const float v = std::min(std::max(x / s + static_cast<float>(z), qmin), qmax);
      T[r][column] = std::fabs(v - std::floor(v) - 0.5f);
      const float q = KP[r][p] ? quantize_one(x, s, z, scheme.bits) : static_cast<float>(z);
      const float dq = (q - static_cast<float>(z)) * s;
      const float e = (x - dq) / d;
      loss += static_cast<double>(e) * e;
      C[r][column] = static_cast<int8_t>(q);
      D[r][column] = dq;
      for (int64_t j = p + 1; j < in; ++j) WP[r][j] -= e * U[p][j];
    }
  }

  torch::Tensor out_scale = torch::from_blob(scale.data(), {out, groups}, torch::kFloat32).clone();
  torch::Tensor out_zero = torch::from_blob(zero.data(), {out, groups}, torch::kInt32).clone();
  std::optional<torch::Tensor> g_idx;
  if (dynamic_groups && options.act_order) {
    torch::Tensor gi = torch::empty({in}, torch::kInt32);
    bool consecutive = true;
    for (int64_t p = 0; p < in; ++p) {
      gi[order[p]] = p / gs;
      consecutive = consecutive && (order[p] / gs == p / gs);
    }
    if (!consecutive) g_idx = gi;
  }
  if (tie_distance) *tie_distance = ties;
  GptqResult result;
  if (quantize) result.weight = QuantizedWeight{codes, out_scale, out_zero, g_idx, scheme};
  result.dequantized = dequantized;
  if (mask || pruning.active()) {
    torch::Tensor chosen = torch::empty({out, in}, torch::kBool);
    for (int64_t p = 0; p < in; ++p) chosen.select(1, order[p]).copy_(kp.select(1, p));
    result.mask = chosen;
  }
  result.loss = loss / 2;
  result.damp_used = fraction;
  result.retries = retries;
  return result;
}

}  // namespace presso

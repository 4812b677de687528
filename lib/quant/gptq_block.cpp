#include "lib/quant/gptq_block.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <type_traits>
#include <vector>

#include "lib/common/errors.h"
#include "lib/quant/scheme.h"

#ifdef PRESSO_WITH_CUDA_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "lib/quant/gptq_block_cuda.h"
#endif

namespace presso::gptq_internal {
namespace {

// Rows per task of the fused kernel's parallel loop.
constexpr int64_t kRowsPerChunk = 16;

// Element (r, i) of a 2-d tensor of any strides, or `fallback` when the tensor is undefined.
class StridedMatrix {
 public:
  StridedMatrix(const torch::Tensor& t, float fallback) : fallback_(fallback) {
    if (!t.defined()) return;
    data_ = t.data_ptr<float>();
    row_ = t.stride(0);
    col_ = t.stride(1);
  }
  bool defined() const { return data_ != nullptr; }
  float operator()(int64_t r, int64_t i) const {
    return data_ ? data_[r * row_ + i * col_] : fallback_;
  }
  // Element (r, i) of a defined matrix, writable.
  float& at(int64_t r, int64_t i) const { return data_[r * row_ + i * col_]; }

 private:
  float* data_ = nullptr;
  int64_t row_ = 0, col_ = 0;
  float fallback_;
};

// row[j] −= err·h_row[j] for the block's later columns, the kernel's hot loop. Also compiled
// for AVX2 (without FMA, so it rounds as the tensor sweep does) and picked at load time where
// the CPU has it.
#if defined(__x86_64__) && defined(__GNUC__)
#define PRESSO_X86_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PRESSO_X86_CLONES
#endif
PRESSO_X86_CLONES void update_later_columns(float* __restrict row, const float* __restrict h_row,
                                            float err, int64_t i, int64_t count) {
  for (int64_t j = i + 1; j < count; ++j) row[j] -= err * h_row[j];
}

// SparseGPT's N:M choice in one row: of columns [i, i + m), the n with the lowest w²/d² (d the
// diagonal of the block's U, `count` wide) are marked pruned in `keep` (ties: the earlier column).
void choose_n_of_m(const float* row, const float* h, int64_t count, int64_t i, int n, int m,
                   const StridedMatrix& keep, int64_t r) {
  float score[64];
  int order[64];
  for (int j = 0; j < m; ++j) {
    const float d = h[(i + j) * count + i + j];
    score[j] = row[i + j] * row[i + j] / (d * d);
    order[j] = j;
  }
  std::stable_sort(order, order + m, [&](int a, int b) { return score[a] < score[b]; });
  for (int j = 0; j < m; ++j) keep.at(r, i + order[j]) = j < n ? 0.0f : 1.0f;
}

// Calls f(task) for every task in [0, n), on up to at::get_num_threads() threads that take the
// next task as they finish one, so a thread the OS preempts delays the others little.
// (at::parallel_for would run serially here: its OpenMP loop is an inline template, compiled into
// the caller, and presso is not built with -fopenmp.) f must not throw.
template <typename F>
void parallel_tasks(int64_t n, const F& f) {
  const int64_t threads = std::min<int64_t>(std::max(1, at::get_num_threads()), n);
  std::atomic<int64_t> next{0};
  const auto work = [&] {
    for (int64_t task = next++; task < n; task = next++) f(task);
  };
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) workers.emplace_back(work);
  work();
  for (auto& worker : workers) worker.join();
}

void expect_cpu(const torch::Tensor& t, torch::ScalarType dtype, const char* what) {
  if (t.defined() && (!t.device().is_cpu() || t.scalar_type() != dtype)) {
    fail_internal("gptq fused CPU sweep: {} must be a CPU {} tensor", what, c10::toString(dtype));
  }
}

// group: [count] contiguous int64 on `device`; row_loss: [out] contiguous fp64 there.
void expect_group_index(const torch::Tensor& group, int64_t count, const torch::Device& device) {
  if (group.device() != device || group.scalar_type() != torch::kLong || group.dim() != 1 ||
      group.size(0) != count || !group.is_contiguous()) {
    fail_internal("gptq sweep: the group index must be a contiguous [{}] int64 tensor on {}", count,
                  device.str());
  }
}

void expect_row_loss(const torch::Tensor& row_loss, int64_t out, const torch::Device& device) {
  if (row_loss.device() != device || row_loss.scalar_type() != torch::kFloat64 ||
      row_loss.dim() != 1 || row_loss.size(0) != out || !row_loss.is_contiguous()) {
    fail_internal("gptq sweep: the row loss must be a contiguous [{}] fp64 tensor on {}", out,
                  device.str());
  }
}

#ifdef PRESSO_WITH_CUDA_KERNELS
void expect_cuda(const torch::Tensor& t, torch::ScalarType dtype, const torch::Device& device,
                 const char* what) {
  if (t.defined() && (t.device() != device || t.scalar_type() != dtype || t.dim() != 2)) {
    fail_internal("gptq fused CUDA sweep: {} must be a 2-d {} tensor on {}, got {} on {}", what,
                  c10::toString(dtype), device.str(), c10::toString(t.scalar_type()),
                  t.device().str());
  }
}

// A 2-d tensor as the kernel's strided view; an undefined tensor gives a null view.
template <typename T>
cuda::Strided<T> strided(const torch::Tensor& t) {
  if (!t.defined()) return {};
  using Element = std::remove_const_t<T>;
  return {t.data_ptr<Element>(), t.stride(0), t.stride(1)};
}
#endif

}  // namespace

bool fused_cuda_available() {
#ifdef PRESSO_WITH_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

int64_t fused_cuda_max_columns() {
#ifdef PRESSO_WITH_CUDA_KERNELS
  return cuda::kMaxColumns;
#else
  return 0;
#endif
}

void sweep_block_fused_cuda(const torch::Tensor& w, const torch::Tensor& hinv,
                            const BlockGrid& grid, const GroupRefresh* refresh, int bits,
                            const BlockOutputs& outputs) {
#ifdef PRESSO_WITH_CUDA_KERNELS
  const torch::Device device = w.device();
  if (!device.is_cuda()) fail_internal("gptq fused CUDA sweep: w is on {}", device.str());
  expect_cuda(w, torch::kFloat32, device, "w");
  expect_cuda(hinv, torch::kFloat32, device, "hinv");
  expect_cuda(grid.scale, torch::kFloat32, device, "scale");
  expect_cuda(grid.zero, torch::kFloat32, device, "zero");
  expect_cuda(grid.keep, torch::kFloat32, device, "keep");
  expect_cuda(outputs.error, torch::kFloat32, device, "error");
  expect_cuda(outputs.codes, torch::kInt8, device, "codes");
  expect_cuda(outputs.dequantized, torch::kFloat32, device, "dequantized");
  const int64_t out = w.size(0);
  const int64_t count = w.size(1);
  if (count < 1 || count > cuda::kMaxColumns) {
    fail_internal("gptq fused CUDA sweep: a block of {} columns (1 to {} supported)", count,
                  cuda::kMaxColumns);
  }
  expect_group_index(grid.group, count, device);
  expect_row_loss(outputs.row_loss, out, device);
  const c10::cuda::CUDAGuard guard(device);
  cuda::SweepBlockArgs args;
  args.rows = out;
  args.count = count;
  args.qmin = static_cast<float>(quant_min(bits));
  args.qmax = static_cast<float>(quant_max(bits));
  args.weight = strided<const float>(w);
  args.hinv = strided<const float>(hinv);
  args.scale = strided<float>(grid.scale);
  args.zero = strided<float>(grid.zero);
  args.group = grid.group.data_ptr<int64_t>();
  args.keep = strided<const float>(grid.keep);
  if (refresh) {
    expect_cuda(refresh->weight, torch::kFloat32, device, "refresh weight");
    expect_cuda(refresh->keep, torch::kFloat32, device, "refresh keep");
    args.refresh_groups = refresh->weight.size(1) / refresh->size;
    args.refresh_first = refresh->first;
    args.refresh_size = refresh->size;
    args.refresh_weight = strided<const float>(refresh->weight);
    args.refresh_keep = strided<const float>(refresh->keep);
    args.rule = refresh->rule;
  }
  args.error = strided<float>(outputs.error);
  args.codes = strided<int8_t>(outputs.codes);
  args.dequantized = strided<float>(outputs.dequantized);
  args.row_loss = outputs.row_loss.data_ptr<double>();
  const char* failure =
      cuda::sweep_block(args, c10::cuda::getCurrentCUDAStream(device.index()).stream());
  if (failure) fail_internal("gptq fused CUDA sweep: {}", failure);
#else
  (void)w, (void)hinv, (void)grid, (void)refresh, (void)bits, (void)outputs;
  fail_internal("gptq fused CUDA sweep: this build has no CUDA kernels");
#endif
}

void sweep_block_fused_cpu(const torch::Tensor& w, const torch::Tensor& hinv, const BlockGrid& grid,
                           const GroupRefresh* refresh, int bits, const BlockOutputs& outputs) {
  expect_cpu(w, torch::kFloat32, "w");
  expect_cpu(hinv, torch::kFloat32, "hinv");
  expect_cpu(grid.scale, torch::kFloat32, "scale");
  expect_cpu(grid.zero, torch::kFloat32, "zero");
  expect_cpu(grid.keep, torch::kFloat32, "keep");
  expect_cpu(outputs.error, torch::kFloat32, "error");
  expect_cpu(outputs.codes, torch::kInt8, "codes");
  expect_cpu(outputs.dequantized, torch::kFloat32, "dequantized");
  const int64_t out = w.size(0);
  const int64_t count = w.size(1);
  const bool quantize = grid.scale.defined();
  const int prune_n = grid.prune_n, prune_m = grid.prune_m;
  if (prune_n > 0 && (!grid.keep.defined() || prune_m > 64 || count % prune_m != 0)) {
    fail_internal("gptq fused CPU sweep: N:M pruning needs a keep matrix, M <= 64 dividing {}",
                  count);
  }
  expect_group_index(grid.group, count, torch::kCPU);
  expect_row_loss(outputs.row_loss, out, torch::kCPU);
  if (refresh) {
    expect_cpu(refresh->weight, torch::kFloat32, "refresh weight");
    expect_cpu(refresh->keep, torch::kFloat32, "refresh keep");
  }
  const torch::Tensor h = hinv.contiguous();
  const float* hp = h.data_ptr<float>();
  const StridedMatrix weight(w, 0.0f);
  const StridedMatrix scale(grid.scale, 1.0f);
  const StridedMatrix zero(grid.zero, 0.0f);
  const StridedMatrix keep(grid.keep, 1.0f);
  const StridedMatrix dequantized(outputs.dequantized, 0.0f);
  const int64_t* group = grid.group.data_ptr<int64_t>();
  const int64_t refreshed = refresh ? refresh->weight.size(1) / refresh->size : 0;
  const StridedMatrix refresh_weight(refresh ? refresh->weight : torch::Tensor(), 0.0f);
  const StridedMatrix refresh_keep(refresh ? refresh->keep : torch::Tensor(), 1.0f);
  float* ep = outputs.error.data_ptr<float>();
  int8_t* cp = quantize ? outputs.codes.data_ptr<int8_t>() : nullptr;
  double* row_loss = outputs.row_loss.data_ptr<double>();
  const int64_t e_row = outputs.error.stride(0), e_col = outputs.error.stride(1);
  const int64_t c_row = quantize ? outputs.codes.stride(0) : 0;
  const int64_t c_col = quantize ? outputs.codes.stride(1) : 0;
  const float qmin = static_cast<float>(quant_min(bits));
  const float qmax = static_cast<float>(quant_max(bits));
  const int64_t chunks = (out + kRowsPerChunk - 1) / kRowsPerChunk;

  // Rows are independent: each gets its refreshed grids, then is swept through the whole block
  // in a private copy that stays in L1. The arithmetic is quantize_values / dequantize_values'
  // (fp32 division, + zero point, clamp, round half to even, (code − z)·s) and the tensor
  // sweep's, so the codes match it.
  parallel_tasks(chunks, [&](int64_t chunk) {
    std::vector<float> row(count), s(count), z(count);
    for (int64_t r = chunk * kRowsPerChunk; r < std::min(out, (chunk + 1) * kRowsPerChunk); ++r) {
      for (int64_t g = 0; g < refreshed; ++g) {
        float lo = std::numeric_limits<float>::infinity();
        float hi = -lo;
        for (int64_t c = g * refresh->size; c < (g + 1) * refresh->size; ++c) {
          const float v = refresh_keep(r, c) == 0.0f ? 0.0f : refresh_weight(r, c);
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
        const group_grid::Grid fresh = group_grid::grid_from_range(lo, hi, refresh->rule);
        scale.at(r, refresh->first + g) = fresh.scale;
        if (zero.defined()) zero.at(r, refresh->first + g) = fresh.zero;
      }
      for (int64_t i = 0; i < count; ++i) {
        row[i] = weight(r, i);
        s[i] = scale(r, group[i]);
        z[i] = zero(r, group[i]);
      }
      double loss = 0;
      for (int64_t i = 0; i < count; ++i) {
        if (prune_n > 0 && i % prune_m == 0) {
          choose_n_of_m(row.data(), hp, count, i, prune_n, prune_m, keep, r);
        }
        const float x = row[i];
        const bool kept = keep(r, i) != 0.0f;
        float q = kept ? x : 0.0f;
        if (quantize) {
          const float code =
              kept ? std::nearbyint(std::min(std::max(x / s[i] + z[i], qmin), qmax)) : z[i];
          q = (code - z[i]) * s[i];
          cp[r * c_row + i * c_col] = static_cast<int8_t>(code);
        }
        const float err = (x - q) / hp[i * count + i];
        ep[r * e_row + i * e_col] = err;
        dequantized.at(r, i) = q;
        loss += static_cast<double>(err) * err;
        update_later_columns(row.data(), hp + i * count, err, i, count);
      }
      row_loss[r] += loss;
    }
  });
}

void sweep_block_tensor_ops(const torch::Tensor& w, const torch::Tensor& hinv,
                            const BlockGrid& grid, int bits, const BlockOutputs& outputs) {
  // Every tensor made here stays here; the outputs are written by copy_ and add_.
  c10::InferenceMode inference;
  const int64_t count = w.size(1);
  const bool quantize = grid.scale.defined();
  const int prune_n = grid.prune_n, prune_m = grid.prune_m;
  if (prune_n > 0 && (!grid.keep.defined() || count % prune_m != 0)) {
    fail_internal("gptq tensor sweep: N:M pruning needs a keep matrix and M dividing {}", count);
  }
  const double qmin = static_cast<double>(quant_min(bits));
  const double qmax = static_cast<double>(quant_max(bits));
  // Columns as contiguous rows, [count, out], so each per-column op reads one run of memory;
  // their views are made once per block (on a GPU the per-column host work is the bottleneck).
  const torch::Tensor wt = w.t().contiguous();
  const torch::Tensor st =
      quantize ? grid.scale.index_select(1, grid.group).t().contiguous() : torch::Tensor();
  const torch::Tensor zt = grid.zero.defined()
                               ? grid.zero.index_select(1, grid.group).t().contiguous()
                               : torch::Tensor();
  const torch::Tensor kt = grid.keep.defined() ? grid.keep.t().contiguous() : torch::Tensor();
  const torch::Tensor qt = torch::empty_like(wt);
  const torch::Tensor et = torch::empty_like(wt);
  const torch::Tensor diagonal = hinv.diagonal();
  const std::vector<torch::Tensor> x = wt.unbind(0), h = hinv.unbind(0), d = diagonal.unbind(0);
  const std::vector<torch::Tensor> s = quantize ? st.unbind(0) : std::vector<torch::Tensor>();
  std::vector<torch::Tensor> q = qt.unbind(0), err = et.unbind(0);  // out= arguments
  const std::vector<torch::Tensor> z = zt.defined() ? zt.unbind(0) : std::vector<torch::Tensor>();
  const std::vector<torch::Tensor> k = kt.defined() ? kt.unbind(0) : std::vector<torch::Tensor>();
  for (int64_t i = 0; i < count; ++i) {
    if (prune_n > 0 && i % prune_m == 0) {
      // SparseGPT's N:M choice: per row, the prune_n lowest w²/d² of the next prune_m columns
      // (a stable sort: ties go to the earlier column).
      const torch::Tensor group = wt.slice(0, i, i + prune_m);  // [m, out]
      const torch::Tensor score =
          group.square().div(diagonal.slice(0, i, i + prune_m).square().unsqueeze(1)).t();
      const torch::Tensor order = std::get<1>(
          torch::sort(score, /*stable=*/true, /*dim=*/1, /*descending=*/false));
      const torch::Tensor keep_group = torch::ones_like(score).scatter_(
          1, order.slice(1, 0, prune_n), 0.0);  // [out, m]
      kt.slice(0, i, i + prune_m).copy_(keep_group.t());
    }
    if (!quantize) {
      q[i].copy_(x[i]);
    } else {
      // (clamp(round(x/s + z)) − z)·s with quantize_values' operation order: z + 1·(x/s) rounds
      // exactly as x/s + z.
      if (zt.defined()) {
        torch::addcdiv_out(q[i], z[i], x[i], s[i]);
      } else {
        torch::div_out(q[i], x[i], s[i]);
      }
      q[i].clamp_(qmin, qmax).round_();
      if (zt.defined()) q[i].sub_(z[i]);
      q[i].mul_(s[i]);
    }
    if (kt.defined()) q[i].mul_(k[i]);
    torch::sub_out(err[i], x[i], q[i]).div_(d[i]);
    if (i + 1 < count) {
      wt.slice(0, i + 1, count).addr_(h[i].slice(0, i + 1, count), err[i], 1, -1);
    }
  }
  outputs.error.copy_(et.t());
  outputs.dequantized.copy_(qt.t());
  outputs.row_loss.add_(et.square().sum({0}, /*keepdim=*/false, torch::kFloat64));
  if (prune_n > 0) grid.keep.copy_(kt.t());
  if (!quantize) return;
  // (code − z)·s is exact to 2^-23 relative and |code − z| < 2^8, so q/s rounds back to the
  // code offset; pruned weights (q = 0) get the zero point.
  torch::Tensor codes = (qt / st).round_();
  if (zt.defined()) codes.add_(zt);
  outputs.codes.copy_(codes.t());
}

}  // namespace presso::gptq_internal

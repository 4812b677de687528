// The CUDA kernel of GPTQ's in-block column sweep (see gptq_block_cuda.h and gptq_block.h): one
// launch per lazy-batch block instead of seven to nine LibTorch ops per column.
//
// kParts threads per weight row (adjacent lanes: 4 when the rows give each SM at most 32, else 2),
// the block's part of U in shared memory, transposed so that a column of U is contiguous. The sweep
// is left-looking, by panels of eight columns:
//   1. every earlier column i reaches the panel's columns, w[j] −= err_i·U[i, j] in order of i,
//      each thread running the chains of its 8/kParts columns (the multiply-subtract work);
//   2. the row's threads exchange their columns, and each of them rounds the whole panel in turn,
//      so the serial chain — a column's rounding needs the previous column's error — runs
//      without shuffles or divergent branches in it;
//   3. each thread stores the errors and dequantized weights of its own columns, part 0 the
//      panel's codes.
// Each element thus gets exactly the right-looking loop's operations in the same order (the CPU
// kernel's). Why this shape (docs/benchmarks.md has the numbers): each row is a chain of
// dependent operations, and 4096 rows leave 132 SMs few warps to hide its latency with, so the
// multiply-subtract work is split over more threads while the chain is kept short. The errors
// of earlier columns live in shared memory, four to a 16-byte load. The groups that start in the
// block first get their grids (group_grid.h) from the row's min and max. The dequantized weights
// replace the block's weights in place; each column's errors are stored for all rows at once,
// coalesced when the caller lays them out column-major (gptq.cpp does); codes go eight bytes at a
// time into row-major codes.
//
// The arithmetic is sweep_block_fused_cpu's, operation for operation, in IEEE fp32 with explicit
// round-to-nearest intrinsics so that nvcc contracts nothing into an FMA: the codes match the
// CPU kernel and the tensor-op sweep bit for bit, except where their own order of summation
// differs (the loss, in fp64).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "lib/quant/gptq_block_cuda.h"

namespace presso::gptq_internal::cuda {
namespace {

constexpr int kColumns = static_cast<int>(kMaxColumns);
// Uᵀ's row pitch in floats: four more than a row, so that the rows the threads of a row read
// side by side fall in different shared-memory banks, and rows stay 16-byte aligned.
constexpr int kPitch = kColumns + 4;
constexpr int kPanel = 8;  // a multiple of 4 and of kParts
constexpr unsigned kFullMask = 0xffffffffu;

template <typename T>
__device__ __forceinline__ T load(const Strided<const T>& m, int64_t r, int64_t c) {
  return __ldg(m.data + r * m.row_stride + c * m.col_stride);
}

// A writable element; read through it with ordinary loads, as the kernel may have written it.
template <typename T>
__device__ __forceinline__ T& element(const Strided<T>& m, int64_t r, int64_t c) {
  return m.data[r * m.row_stride + c * m.col_stride];
}

__device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

__device__ __forceinline__ bool aligned8(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 7) == 0;
}

// Whether a row of `m` can be read as float4: columns contiguous, every row 16-byte aligned.
__device__ __forceinline__ bool rows_by_float4(const Strided<const float>& m) {
  return m.col_stride == 1 && m.row_stride % 4 == 0 && aligned16(m.data);
}

// The value that lane `lane` of the warp holds, for every thread.
template <typename T>
__device__ __forceinline__ T from_lane(T value, int lane) {
  return __shfl_sync(kFullMask, value, lane);
}

// Uᵀ into shared memory: row j of `ut` holds U[0..j, j] (what the sweep reads: U is upper
// triangular). Each warp copies whole rows; 16-byte loads where U's columns are contiguous.
template <int kThreads>
__device__ void load_upper_transposed(const SweepBlockArgs& a, float* ut, int count) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  constexpr int kWarps = (kThreads + 31) / 32;
  const bool by_float4 = a.hinv.row_stride == 1 && a.hinv.col_stride % 4 == 0 &&
                         aligned16(a.hinv.data) && count % 4 == 0;
  if (by_float4) {
    // Row j needs floats 0..j: j/4 + 1 loads, at most 32, so one per lane.
#pragma unroll 4
    for (int j = warp; j < count; j += kWarps) {
      if (lane <= j / 4) {
        const float4* column = reinterpret_cast<const float4*>(a.hinv.data + j * a.hinv.col_stride);
        reinterpret_cast<float4*>(ut + j * kPitch)[lane] = __ldg(column + lane);
      }
    }
  } else {
    for (int j = warp; j < count; j += kWarps) {
      for (int i = lane; i <= j; i += 32) ut[j * kPitch + i] = load(a.hinv, i, j);
    }
  }
}

// The grids of the groups that start in the block, for one row: its threads split each group's
// columns, the minima and maxima are combined across them, part 0 stores the grid. The weights
// are read with plain loads: the kernel overwrites them later (with their dequantized values).
template <int kParts>
__device__ void refresh_groups(const SweepBlockArgs& a, int64_t row, bool active, int part) {
  const bool by_float4 = rows_by_float4(a.refresh_weight) && a.refresh_size % 4 == 0 &&
                         (!a.refresh_keep.data || rows_by_float4(a.refresh_keep));
  for (int64_t g = 0; g < a.refresh_groups; ++g) {
    float lo = INFINITY, hi = -INFINITY;
    const int64_t first = g * a.refresh_size;
    const auto take = [&](float v, float keep) {
      v = keep == 0.0f ? 0.0f : v;  // pruned weights count as 0
      lo = fminf(lo, v);
      hi = fmaxf(hi, v);
    };
    if (active && by_float4) {
      const float4* w = reinterpret_cast<const float4*>(a.refresh_weight.data +
                                                        row * a.refresh_weight.row_stride + first);
      const float4* k = a.refresh_keep.data
                            ? reinterpret_cast<const float4*>(
                                  a.refresh_keep.data + row * a.refresh_keep.row_stride + first)
                            : nullptr;
#pragma unroll 4
      for (int64_t c = part; c < a.refresh_size / 4; c += kParts) {
        const float4 v = w[c];
        const float4 keep = k ? __ldg(k + c) : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
        take(v.x, keep.x), take(v.y, keep.y), take(v.z, keep.z), take(v.w, keep.w);
      }
    } else if (active) {
#pragma unroll 4
      for (int64_t c = first + part; c < first + a.refresh_size; c += kParts) {
        take(a.refresh_weight
                 .data[row * a.refresh_weight.row_stride + c * a.refresh_weight.col_stride],
             a.refresh_keep.data ? load(a.refresh_keep, row, c) : 1.0f);
      }
    }
#pragma unroll
    for (int offset = 1; offset < kParts; offset <<= 1) {
      lo = fminf(lo, __shfl_xor_sync(kFullMask, lo, offset));
      hi = fmaxf(hi, __shfl_xor_sync(kFullMask, hi, offset));
    }
    if (active && part == 0) {
      const group_grid::Grid grid = group_grid::grid_from_range(lo, hi, a.rule);
      element(a.scale, row, a.refresh_first + g) = grid.scale;
      if (a.zero.data) element(a.zero, row, a.refresh_first + g) = grid.zero;
    }
  }
  __syncwarp();  // orders part 0's stores before the other parts' loads
}

// A thread's columns of a panel (first + kParts·k): weights, grids and mask (1 keep, 0 pruned);
// columns past the block, or of rows past the end, read as 0 on the grid (1, 0), kept.
template <int kParts>
struct Owned {
  static constexpr int kCount = kPanel / kParts;
  float x[kCount], s[kCount], z[kCount], keep[kCount];
};

template <int kParts>
__device__ Owned<kParts> load_owned(const SweepBlockArgs& a, int64_t row, bool active, int first) {
  Owned<kParts> own;
#pragma unroll
  for (int k = 0; k < Owned<kParts>::kCount; ++k) {
    const int j = first + kParts * k;
    const bool inside = active && j < a.count;
    const int64_t group = inside ? __ldg(a.group + j) : 0;
    // A plain load: the kernel overwrites the weights with their dequantized values.
    own.x[k] = inside ? a.weight.data[row * a.weight.row_stride + j * a.weight.col_stride] : 0.0f;
    own.s[k] = inside ? element(a.scale, row, group) : 1.0f;
    own.z[k] = inside && a.zero.data ? element(a.zero, row, group) : 0.0f;
    own.keep[k] = inside && a.keep.data ? load(a.keep, row, j) : 1.0f;
  }
  return own;
}

// Step 1 for panel p: x[k] −= err_i·U[i, p + part + kParts·k] for i < p, in order. The loads of
// the next four columns are issued before the arithmetic of the current four (the last ones read
// past column p − 1, still inside the arrays, and go unused).
template <int kParts, int kRows>
__device__ __forceinline__ void receive_earlier(float (&x)[kPanel / kParts], const float* ut,
                                                const float4* errors4, int p, int part,
                                                int local_row) {
  constexpr int kOwned = kPanel / kParts;
  const float4* e_at = errors4 + local_row;
  const float4* u_at[kOwned];
  float4 e = *e_at, u[kOwned];
#pragma unroll
  for (int k = 0; k < kOwned; ++k) {
    u_at[k] = reinterpret_cast<const float4*>(ut + (p + part + kParts * k) * kPitch);
    u[k] = *u_at[k];
  }
#pragma unroll 2
  for (int q = 0; q < p / 4; ++q) {
    e_at += kRows;
    const float4 e_next = *e_at;
    float4 u_next[kOwned];
#pragma unroll
    for (int k = 0; k < kOwned; ++k) u_next[k] = *++u_at[k];
#pragma unroll
    for (int k = 0; k < kOwned; ++k) {
      float& v = x[k];
      v = __fsub_rn(v, __fmul_rn(e.x, u[k].x));
      v = __fsub_rn(v, __fmul_rn(e.y, u[k].y));
      v = __fsub_rn(v, __fmul_rn(e.z, u[k].z));
      v = __fsub_rn(v, __fmul_rn(e.w, u[k].w));
      u[k] = u_next[k];
    }
    e = e_next;
  }
}

// values[first + part] for the row's thread `part` (kParts − 1 selects, no local memory).
template <int kParts>
__device__ __forceinline__ float pick(const float (&values)[kPanel], int first, int part) {
  float value = values[first];
#pragma unroll
  for (int q = 1; q < kParts; ++q) value = part == q ? values[first + q] : value;
  return value;
}

// Dynamic shared memory of a launch: Uᵀ [kColumns][kPitch] fp32 (see load_upper_transposed),
// then the errors as float4 [kColumns / 4][kRows] (error i of a row in component i % 4 of entry
// (i / 4, row)). At most 100 KB.
constexpr size_t shared_bytes(int rows) {
  return (kColumns * kPitch + kColumns * rows) * sizeof(float);
}

template <int kParts, int kRows>
__global__ void __launch_bounds__(kParts* kRows) sweep_block_kernel(const SweepBlockArgs a) {
  constexpr int kThreads = kParts * kRows;
  extern __shared__ float4 shared[];
  const int count = static_cast<int>(a.count);
  const int tid = static_cast<int>(threadIdx.x);
  const int part = tid % kParts;
  const int local_row = tid / kParts;
  const int first_lane = (tid & 31) - part;  // the row's part 0
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRows + local_row;
  // Threads of rows past the end stay to the end: the shuffles need every lane of a warp.
  const bool active = row < a.rows;
  float* const ut = reinterpret_cast<float*>(shared);
  float4* const errors4 = shared + kColumns * kPitch / 4;
  float* const error_row = a.error.data + (active ? row : 0) * a.error.row_stride;
  int8_t* const codes_row = a.codes.data + (active ? row : 0) * a.codes.row_stride;
  float* const dequantized_row = a.dequantized.data + (active ? row : 0) * a.dequantized.row_stride;

  load_upper_transposed<kThreads>(a, ut, count);
  __syncthreads();
  refresh_groups<kParts>(a, row, active, part);

  double loss = 0;
  Owned<kParts> next = load_owned<kParts>(a, row, active, part);
  for (int p = 0; p < count; p += kPanel) {
    Owned<kParts> own = next;
    receive_earlier<kParts, kRows>(own.x, ut, errors4, p, part, local_row);
    next = load_owned<kParts>(a, row, active, p + kPanel + part);  // its latency hides below

    // Step 2: the panel on every thread of the row, and its part of U: u[d][c] = U[p + c, p + d].
    float x[kPanel], s[kPanel], z[kPanel], keep[kPanel], u[kPanel][kPanel];
#pragma unroll
    for (int c = 0; c < kPanel; ++c) {
      const int k = c / kParts, lane = first_lane + c % kParts;
      x[c] = from_lane(own.x[k], lane);
      s[c] = from_lane(own.s[k], lane);
      z[c] = from_lane(own.z[k], lane);
      keep[c] = from_lane(own.keep[k], lane);
      const float4* column = reinterpret_cast<const float4*>(ut + (p + c) * kPitch + p);
      const float4 low = column[0], high = column[1];
      u[c][0] = low.x, u[c][1] = low.y, u[c][2] = low.z, u[c][3] = low.w;
      u[c][4] = high.x, u[c][5] = high.y, u[c][6] = high.z, u[c][7] = high.w;
    }
    // Columns past the block are swept too, on garbage that only they receive; nothing of them
    // is stored.
    float err[kPanel], code[kPanel], q[kPanel];
#pragma unroll
    for (int c = 0; c < kPanel; ++c) {
      // code = clamp(round(x/s + z)), z where pruned (keep 0: the FMA is exact on these
      // integers), q = (code − z)·s, err = (x − q)/U_jj.
      const float v = fminf(fmaxf(__fadd_rn(__fdiv_rn(x[c], s[c]), z[c]), a.qmin), a.qmax);
      code[c] = __fmaf_rn(keep[c], __fsub_rn(rintf(v), z[c]), z[c]);
      q[c] = __fmul_rn(__fsub_rn(code[c], z[c]), s[c]);
      err[c] = __fdiv_rn(__fsub_rn(x[c], q[c]), u[c][c]);
#pragma unroll
      for (int d = c + 1; d < kPanel; ++d) x[d] = __fsub_rn(x[d], __fmul_rn(err[c], u[d][c]));
    }

    // Step 3: each thread stores the errors and weights of its own columns; part 0 stores the
    // panel's codes, eight bytes at once where they are contiguous and aligned.
#pragma unroll
    for (int k = 0; k < kPanel / kParts; ++k) {
      const int j = p + part + kParts * k;
      const float e = pick<kParts>(err, kParts * k, part);
      const float dq = pick<kParts>(q, kParts * k, part);
      if (active && j < count) {
        error_row[j * a.error.col_stride] = e;
        dequantized_row[j * a.dequantized.col_stride] = dq;
        loss += static_cast<double>(e) * e;
      }
    }
    if (active && part == 0) {
      int8_t* const at = codes_row + p * a.codes.col_stride;
      if (a.codes.col_stride == 1 && p + kPanel <= count && aligned8(at)) {
        unsigned lo = 0, hi = 0;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          lo |= (static_cast<unsigned>(__float2int_rn(code[c])) & 0xffu) << (8 * c);
          hi |= (static_cast<unsigned>(__float2int_rn(code[c + 4])) & 0xffu) << (8 * c);
        }
        *reinterpret_cast<uint2*>(at) = make_uint2(lo, hi);
      } else {
#pragma unroll
        for (int c = 0; c < kPanel; ++c) {
          if (p + c < count)
            at[c * a.codes.col_stride] = static_cast<int8_t>(__float2int_rn(code[c]));
        }
      }
    }
#pragma unroll
    for (int h = 0; h < kPanel / 4; ++h) {
      if (h % kParts == part) {
        errors4[(p / 4 + h) * kRows + local_row] =
            make_float4(err[4 * h], err[4 * h + 1], err[4 * h + 2], err[4 * h + 3]);
      }
    }
    __syncwarp();  // orders the error stores before the next panel reads them
  }
  // Σ err² of the row, summed over its threads in a fixed order.
  double total = 0;
#pragma unroll
  for (int t = 0; t < kParts; ++t) total += from_lane(loss, first_lane + t);
  if (active && part == 0) a.row_loss[row] += total;
}

template <int kParts, int kRows>
cudaError_t launch(const SweepBlockArgs& a, cudaStream_t stream) {
  const int64_t blocks = (a.rows + kRows - 1) / kRows;
  if (blocks > INT32_MAX) return cudaErrorInvalidConfiguration;
  const auto kernel = sweep_block_kernel<kParts, kRows>;
  // Above 48 KB a kernel gets dynamic shared memory only after raising its limit.
  const cudaError_t status = cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes(kRows)));
  if (status != cudaSuccess) return status;
  kernel<<<static_cast<unsigned>(blocks), kParts * kRows, shared_bytes(kRows), stream>>>(a);
  return cudaSuccess;
}

}  // namespace

const char* sweep_block(const SweepBlockArgs& a, void* stream) {
  if (a.count < 1 || a.count > kMaxColumns || a.rows < 0 || !a.weight.data || !a.hinv.data ||
      !a.scale.data || !a.group || !a.error.data || !a.codes.data || !a.dequantized.data ||
      (a.rows > 0 && !a.row_loss) || a.refresh_groups < 0 ||
      (a.refresh_groups > 0 && (a.refresh_size < 1 || !a.refresh_weight.data))) {
    return "invalid arguments to the GPTQ CUDA block sweep";
  }
  if (a.rows == 0) return nullptr;
  int device = 0, processors = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) {
    status = cudaDeviceGetAttribute(&processors, cudaDevAttrMultiProcessorCount, device);
  }
  if (status != cudaSuccess) return cudaGetErrorString(status);
  // More threads per row while the rows leave the SMs short of warps (docs/benchmarks.md).
  const auto s = static_cast<cudaStream_t>(stream);
  const int64_t rows_per_processor = (a.rows + processors - 1) / processors;
  if (rows_per_processor <= 32) {
    status = launch<4, 32>(a, s);
  } else {
    status = launch<2, 64>(a, s);
  }
  if (status != cudaSuccess) return cudaGetErrorString(status);
  status = cudaGetLastError();
  return status == cudaSuccess ? nullptr : cudaGetErrorString(status);
}

}  // namespace presso::gptq_internal::cuda

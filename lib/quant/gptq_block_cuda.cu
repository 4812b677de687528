// The CUDA kernel of GPTQ's in-block column sweep (see gptq_block_cuda.h and gptq_block.h): one
// launch per lazy-batch block instead of seven to nine LibTorch ops per column.
//
// kParts threads per weight row (adjacent lanes; 4 for weights of fewer rows than 64 per SM, else
// 1), the block's part of U in shared memory (transposed, so that a column of U is contiguous).
// The sweep is left-looking, by panels of eight columns: a panel's columns start from the weight
// and receive w −= err_i·U[i, j] from every earlier column i in order, each thread running the
// chains of its 8/kParts columns, then are rounded in turn by the thread that holds them, which
// passes the error to the row's other threads by a shuffle. Each element thus gets exactly the
// right-looking loop's operations in the same order (the CPU kernel's). Why this shape
// (docs/benchmarks.md has the numbers): each row is a chain of dependent operations, so the GPU
// needs many chains in flight; a fully unrolled right-looking loop with the row in registers
// needs one instruction per (i, j) pair and ran at about 200 µs a block of 128 columns whatever
// the rows (most likely instruction fetch); one thread per row leaves too few warps for 4096 rows
// on 132 SMs. The errors of earlier columns live in shared memory, four to a 16-byte load. The
// groups that start in the block first get their grids (group_grid.h) from the row's min and max.
// Each column's errors and codes are stored for all rows at once: coalesced when the caller lays
// them out column-major (gptq.cpp does).
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

// Template parameters of the kernel: kParts threads share a row (adjacent lanes: 1, 2, 4 or 8),
// kRows rows per thread block.
constexpr int kColumns = static_cast<int>(kMaxColumns);
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

// The value of the row's part `part` (0 .. kParts − 1), for every thread of the row.
template <int kParts, typename T>
__device__ __forceinline__ T from_part(T value, int part) {
  return __shfl_sync(kFullMask, value, (static_cast<int>(threadIdx.x) & 31 & ~(kParts - 1)) | part);
}

// The grids of the groups that start in the block, for one row: each of its threads scans every
// kParts-th column, the minima and maxima are combined across them, part 0 stores the grid.
template <int kParts>
__device__ void refresh_groups(const SweepBlockArgs& a, int64_t row, bool active, int part) {
  for (int64_t g = 0; g < a.refresh_groups; ++g) {
    float lo = INFINITY, hi = -INFINITY;
    if (active) {
#pragma unroll 4
      for (int64_t c = g * a.refresh_size + part; c < (g + 1) * a.refresh_size; c += kParts) {
        const bool pruned = a.refresh_keep.data && load(a.refresh_keep, row, c) == 0.0f;
        const float v = pruned ? 0.0f : load(a.refresh_weight, row, c);
        lo = fminf(lo, v);
        hi = fmaxf(hi, v);
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

// A thread's columns of a panel (part + kParts·k): weights, grids and mask bits; columns past the
// block, or of rows past the end, read as 0 on the grid (1, 0), unpruned.
template <int kParts>
struct Panel {
  static constexpr int kOwned = kPanel / kParts;
  float x[kOwned], s[kOwned], z[kOwned];
  bool kept[kOwned];
};

template <int kParts>
__device__ Panel<kParts> load_panel(const SweepBlockArgs& a, int64_t row, bool active, int first) {
  Panel<kParts> panel;
  constexpr int kOwned = Panel<kParts>::kOwned;
#pragma unroll
  for (int k = 0; k < kOwned; ++k) {
    const int j = first + kParts * k;
    const bool inside = active && j < a.count;
    const int64_t group = inside ? __ldg(a.group + j) : 0;
    panel.x[k] = inside ? load(a.weight, row, j) : 0.0f;
    panel.s[k] = inside ? element(a.scale, row, group) : 1.0f;
    panel.z[k] = inside && a.zero.data ? element(a.zero, row, group) : 0.0f;
    panel.kept[k] = !inside || !a.keep.data || load(a.keep, row, j) != 0.0f;
  }
  return panel;
}

// Dynamic shared memory of a launch: Uᵀ [kColumns][kColumns] fp32 (U[i, j] at j·kColumns + i, 0
// outside the block), then the errors as float4 [kColumns / 4][kRows] (error i of a row in
// component i % 4 of entry (i / 4, row)). At most 96 KB: what Volta and every later GPU allow.
constexpr size_t shared_bytes(int rows) {
  return (kColumns * kColumns + kColumns * rows) * sizeof(float);
}

template <int kParts, int kRows>
__global__ void __launch_bounds__(kParts* kRows) sweep_block_kernel(const SweepBlockArgs a) {
  constexpr int kThreads = kParts * kRows;
  constexpr int kOwned = Panel<kParts>::kOwned;
  extern __shared__ float4 shared[];
  const int count = static_cast<int>(a.count);
  const int tid = static_cast<int>(threadIdx.x);
  const int part = tid % kParts;
  const int local_row = tid / kParts;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRows + local_row;
  // Threads of rows past the end stay to the end: the shuffles need every lane of a warp.
  const bool active = row < a.rows;
  float* const ut = reinterpret_cast<float*>(shared);
  float4* const errors4 = shared + kColumns * kColumns / 4;
  float* const errors = reinterpret_cast<float*>(errors4);
  const auto error_slot = [&](int i) -> float& {
    return errors[((i >> 2) * kRows + local_row) * 4 + (i & 3)];
  };

  // Uᵀ: consecutive threads take consecutive elements along U's contiguous dimension.
  const bool columns_contiguous = a.hinv.row_stride == 1;
#pragma unroll 16
  for (int t = tid; t < kColumns * kColumns; t += kThreads) {
    const int major = t / kColumns, minor = t % kColumns;
    const int i = columns_contiguous ? minor : major;
    const int j = columns_contiguous ? major : minor;
    ut[j * kColumns + i] = i < count && j < count ? load(a.hinv, i, j) : 0.0f;
  }
  __syncthreads();
  refresh_groups<kParts>(a, row, active, part);

  // Panels of kPanel columns: first every earlier panel's errors reach the panel's columns (each
  // thread runs the chains of its kOwned columns), then the columns are rounded in turn by the
  // thread that owns them, each error passed to the row's other threads for the panel's later
  // columns. The next panel's loads are issued before that serial part, to hide their latency.
  double loss = 0;
  Panel<kParts> panel = load_panel<kParts>(a, row, active, part);
  for (int p = 0; p < count; p += kPanel) {
    // w[j] −= err_i·U[i, j] for the earlier panels' columns i, in order.
    for (int i = 0; i < p; i += 4) {
      const float4 e = errors4[(i >> 2) * kRows + local_row];
#pragma unroll
      for (int k = 0; k < kOwned; ++k) {
        const int j = p + part + kParts * k;
        const float4 u = reinterpret_cast<const float4*>(ut + j * kColumns)[i >> 2];
        float& x = panel.x[k];
        x = __fsub_rn(x, __fmul_rn(e.x, u.x));
        x = __fsub_rn(x, __fmul_rn(e.y, u.y));
        x = __fsub_rn(x, __fmul_rn(e.z, u.z));
        x = __fsub_rn(x, __fmul_rn(e.w, u.w));
      }
    }
    const Panel<kParts> next = load_panel<kParts>(a, row, active, p + kPanel + part);
#pragma unroll
    for (int c = 0; c < kPanel; ++c) {
      const int j = p + c;
      if (j >= count) break;  // the same for every thread
      const int owner = c % kParts;
      const int k = c / kParts;
      float err = 0.0f;
      if (part == owner) {
        // code = clamp(round(x/s + z)) (z where pruned), q = (code − z)·s, err = (x − q)/U_jj.
        const float x = panel.x[k], s = panel.s[k], z = panel.z[k];
        const float v = fminf(fmaxf(__fadd_rn(__fdiv_rn(x, s), z), a.qmin), a.qmax);
        const float code = panel.kept[k] ? rintf(v) : z;
        const float q = __fmul_rn(__fsub_rn(code, z), s);
        err = __fdiv_rn(__fsub_rn(x, q), ut[j * kColumns + j]);
        if (active) {
          error_slot(j) = err;
          element(a.error, row, j) = err;
          element(a.codes, row, j) = static_cast<int8_t>(__float2int_rn(code));
          loss += static_cast<double>(err) * err;
        }
      }
      err = from_part<kParts>(err, owner);
#pragma unroll
      for (int d = 0; d < kOwned; ++d) {
        const int column = part + kParts * d;  // this thread's panel column d
        if (column > c) {
          panel.x[d] = __fsub_rn(panel.x[d], __fmul_rn(err, ut[(p + column) * kColumns + j]));
        }
      }
    }
    __syncwarp();  // orders the owners' error_slot stores before the next panel reads them
    panel = next;
  }
  // Σ err² of the row, summed over its threads in a fixed order.
  double total = 0;
#pragma unroll
  for (int q = 0; q < kParts; ++q) total += from_part<kParts>(loss, q);
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
      !a.scale.data || !a.group || !a.error.data || !a.codes.data ||
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
  // One thread per row while the rows give every SM a thread block of 64; below that, four
  // threads per row, so that more warps share the work (docs/benchmarks.md).
  if (a.rows >= 64 * static_cast<int64_t>(processors)) {
    status = launch<1, 64>(a, static_cast<cudaStream_t>(stream));
  } else {
    status = launch<4, 32>(a, static_cast<cudaStream_t>(stream));
  }
  if (status != cudaSuccess) return cudaGetErrorString(status);
  status = cudaGetLastError();
  return status == cudaSuccess ? nullptr : cudaGetErrorString(status);
}

}  // namespace presso::gptq_internal::cuda

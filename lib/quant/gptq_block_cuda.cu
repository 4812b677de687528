// The CUDA kernel of GPTQ's in-block column sweep (see gptq_block_cuda.h and gptq_block.h): one
// launch per lazy-batch block instead of seven to nine LibTorch ops per column.
//
// One warp per weight row. Lane l holds the row's columns l, l + 32, l + 64, ... of the block in
// registers, with their scales, zero points and mask bits. Column i is rounded by the lane that
// holds it, its error broadcast to the warp by a shuffle, and every lane updates its later
// columns with U[i, j] from shared memory (the block's part of U, each row padded with zeros to
// 32·slots columns so that no lane tests bounds; global memory where that does not fit). The
// results stay in registers until the block is done and are stored coalesced.
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

constexpr int kWarps = 8;  // rows per thread block
constexpr int kThreads = 32 * kWarps;
constexpr unsigned kFullMask = 0xffffffffu;

template <typename T>
__device__ __forceinline__ T load(const Strided<const T>& m, int64_t r, int64_t c) {
  return __ldg(m.data + r * m.row_stride + c * m.col_stride);
}

template <typename T>
__device__ __forceinline__ void store(const Strided<T>& m, int64_t r, int64_t c, T value) {
  m.data[r * m.row_stride + c * m.col_stride] = value;
}

// kSlots = ceil(count / 32) columns per lane; kSharedHinv: the block's U is copied to shared
// memory (count × 32·kSlots floats), else read through the read-only cache.
template <int kSlots, bool kSharedHinv>
__global__ void __launch_bounds__(kThreads) sweep_block_kernel(const SweepBlockArgs a) {
  constexpr int kWidth = 32 * kSlots;
  extern __shared__ float shared_hinv[];
  const int count = static_cast<int>(a.count);
  if constexpr (kSharedHinv) {
    for (int t = threadIdx.x; t < count * kWidth; t += blockDim.x) {
      const int r = t / kWidth;
      const int c = t % kWidth;
      shared_hinv[t] = c < count ? load(a.hinv, r, c) : 0.0f;
    }
    __syncthreads();
  }
  // U[i, j] of the block, 0 for padding columns j >= count.
  const auto hinv = [&](int i, int j) -> float {
    if constexpr (kSharedHinv) {
      return shared_hinv[i * kWidth + j];
    } else {
      return j < count ? load(a.hinv, i, j) : 0.0f;
    }
  };

  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= a.rows) return;  // a whole warp: every shuffle below has all 32 lanes

  float x[kSlots], s[kSlots], z[kSlots], q[kSlots], e[kSlots], code[kSlots];
  bool kept[kSlots];
#pragma unroll
  for (int t = 0; t < kSlots; ++t) {
    const int c = lane + 32 * t;
    const bool inside = c < count;
    x[t] = inside ? load(a.weight, row, c) : 0.0f;
    s[t] = inside ? load(a.scale, row, c) : 1.0f;
    z[t] = inside && a.zero.data ? load(a.zero, row, c) : 0.0f;
    kept[t] = inside && a.keep.data ? load(a.keep, row, c) != 0.0f : true;
    q[t] = e[t] = code[t] = 0.0f;
  }

  double loss = 0;
#pragma unroll
  for (int slot = 0; slot < kSlots; ++slot) {
    for (int l = 0; l < 32; ++l) {
      const int i = 32 * slot + l;
      if (i >= count) break;  // the same for the whole warp
      float err = 0.0f;
      if (lane == l) {
        // code = clamp(round(x/s + z)) (z where pruned), q = (code − z)·s, err = (x − q)/U_ii.
        const float v =
            fminf(fmaxf(__fadd_rn(__fdiv_rn(x[slot], s[slot]), z[slot]), a.qmin), a.qmax);
        code[slot] = kept[slot] ? rintf(v) : z[slot];
        q[slot] = __fmul_rn(__fsub_rn(code[slot], z[slot]), s[slot]);
        err = __fdiv_rn(__fsub_rn(x[slot], q[slot]), hinv(i, i));
        e[slot] = err;
        loss += static_cast<double>(err) * err;
      }
      err = __shfl_sync(kFullMask, err, l);
      // w[j] −= err·U[i, j] for j > i. Slots below `slot` hold only finished columns and are
      // skipped; in `slot` itself the finished lanes (<= l) update a value no longer read.
#pragma unroll
      for (int t = slot; t < kSlots; ++t) {
        x[t] = __fsub_rn(x[t], __fmul_rn(err, hinv(i, lane + 32 * t)));
      }
    }
  }

#pragma unroll
  for (int t = 0; t < kSlots; ++t) {
    const int c = lane + 32 * t;
    if (c < count) {
      store(a.dequantized, row, c, q[t]);
      store(a.error, row, c, e[t]);
      store(a.codes, row, c, static_cast<int8_t>(__float2int_rn(code[t])));
    }
  }
  for (int offset = 16; offset > 0; offset >>= 1) loss += __shfl_down_sync(kFullMask, loss, offset);
  if (lane == 0) a.row_loss[row] = loss;
}

template <int kSlots>
cudaError_t launch(const SweepBlockArgs& a, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((a.rows + kWarps - 1) / kWarps);
  const size_t shared = static_cast<size_t>(a.count) * 32 * kSlots * sizeof(float);
  int device = 0;
  int max_shared = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) {
    status = cudaDeviceGetAttribute(&max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  }
  if (status != cudaSuccess) return status;
  if (shared <= static_cast<size_t>(max_shared)) {
    // Above 48 KB a kernel gets dynamic shared memory only after raising its limit.
    const auto kernel = sweep_block_kernel<kSlots, true>;
    status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(shared));
    if (status != cudaSuccess) return status;
    kernel<<<blocks, kThreads, shared, stream>>>(a);
  } else {
    sweep_block_kernel<kSlots, false><<<blocks, kThreads, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

}  // namespace

const char* sweep_block(const SweepBlockArgs& a, void* stream) {
  if (a.count < 1 || a.count > kMaxColumns || a.rows < 0 || !a.weight.data || !a.hinv.data ||
      !a.scale.data || !a.dequantized.data || !a.error.data || !a.codes.data ||
      (a.rows > 0 && !a.row_loss)) {
    return "invalid arguments to the GPTQ CUDA block sweep";
  }
  if (a.rows == 0) return nullptr;
  if ((a.rows + kWarps - 1) / kWarps > INT32_MAX) return "too many rows for the GPTQ CUDA sweep";
  const auto s = static_cast<cudaStream_t>(stream);
  // One instance per number of 32-column slots a lane holds.
  constexpr cudaError_t (*kLaunch[])(const SweepBlockArgs&, cudaStream_t) = {
      launch<1>, launch<2>, launch<3>, launch<4>, launch<5>, launch<6>, launch<7>, launch<8>};
  static_assert(sizeof(kLaunch) / sizeof(kLaunch[0]) * 32 == kMaxColumns);
  const cudaError_t status = kLaunch[(a.count + 31) / 32 - 1](a, s);
  return status == cudaSuccess ? nullptr : cudaGetErrorString(status);
}

}  // namespace presso::gptq_internal::cuda

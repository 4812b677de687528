// Internal to lib/quant/gptq_block.cpp: the CUDA kernel of GPTQ's in-block column sweep
// (gptq_block_cuda.cu), behind a plain C++ launcher so that neither side needs the other's
// headers: this header is free of LibTorch and of CUDA, the .cu of LibTorch. Built only when
// CMake finds a CUDA compiler and a CUDA LibTorch (PRESSO_WITH_CUDA_KERNELS).
#pragma once

#include <cstdint>

#include "lib/quant/group_grid.h"

namespace presso::gptq_internal::cuda {

// Element (r, c) of a row-major view is data[r·row_stride + c·col_stride] (strides in elements;
// 0 repeats a column or row).
template <typename T>
struct Strided {
  T* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 0;
};

// One block of `count` columns of a weight of `rows` rows, all on the current CUDA device, as
// gptq_block.h describes sweep_block_fused_cpu's arguments.
struct SweepBlockArgs {
  int64_t rows = 0;
  int64_t count = 0;               // 1..kMaxColumns
  float qmin = 0, qmax = 0;        // the signed code range
  Strided<const float> weight;     // [rows, count]; may be the memory of `dequantized`
  Strided<const float> hinv;       // [count, count], the block's part of U
  Strided<float> scale;            // [rows, n_groups], written where refreshed
  Strided<float> zero;             // [rows, n_groups]; data null: zero point 0
  const int64_t* group = nullptr;  // [count] grid column of each block column
  Strided<const float> keep;       // [rows, count] 1/0; data null: keep all
  // GroupRefresh: grid columns refresh_first.. from refresh_groups groups of refresh_size
  // columns of refresh_weight (refresh_keep: their mask), computed before the sweep.
  int64_t refresh_groups = 0;
  int64_t refresh_first = 0;
  int64_t refresh_size = 0;
  Strided<const float> refresh_weight;
  Strided<const float> refresh_keep;
  group_grid::GridRule rule;
  Strided<float> error;        // [rows, count] out: (w − q)/U_ii
  Strided<int8_t> codes;       // [rows, count] out
  Strided<float> dequantized;  // [rows, count] out: (code − z)·s
  double* row_loss = nullptr;  // [rows] Σ err² over the block's columns of each row is added
};

// The widest block the kernel takes: the block's part of U lives in shared memory.
constexpr int64_t kMaxColumns = 128;

// Enqueues the sweep on `stream` (a cudaStream_t) of the current device. Returns nullptr, or a
// static message naming what failed (bad arguments, or the CUDA error of the launch).
const char* sweep_block(const SweepBlockArgs& args, void* stream);

}  // namespace presso::gptq_internal::cuda

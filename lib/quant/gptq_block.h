// Internal to lib/quant/gptq.cpp: the column sweep inside one lazy-batch block of GPTQ, in three
// implementations that agree up to fp32 rounding (tests compare each against gptq_quantize_ref).
#pragma once

#include <torch/types.h>

#include "lib/quant/group_grid.h"

namespace presso::gptq_internal {

// The grid the block's columns are quantized with: block column j uses grid column group[j].
struct BlockGrid {
  // [out, n_groups] fp32, the layer's grid (a refresh writes into it); undefined without
  // quantization: kept weights then stay as they are (q = w) and only pruned ones move errors.
  torch::Tensor scale;
  torch::Tensor zero;   // [out, n_groups] fp32 integral values; undefined when symmetric
  torch::Tensor group;  // [count] int64
  // [out, count] fp32 1 keep, 0 pruned; undefined without a sparsity mask. With prune_n the sweep
  // writes its N:M choices into it.
  torch::Tensor keep;
  // N:M chosen in the sweep (SparseGPT): at each block column i with i % prune_m == 0, every row
  // prunes the prune_n columns of [i, i + prune_m) with the lowest w²/hinv[j, j]² as its weights
  // then stand (ties: the earlier column). 0: none.
  int prune_n = 0;
  int prune_m = 0;
};

// Grid columns that the fused sweeps compute before the block's first column: grid column
// first + k from the min and max of columns [k·size, (k+1)·size) of `weight` (pruned ones read as
// 0), by group_grid::grid_from_range — what compute_grid gives without an MSE search. A scale
// that overflows its storage dtype is stored as inf; the caller checks the grid once at the end.
struct GroupRefresh {
  torch::Tensor weight;  // [out, n·size] fp32, a view of the working weight's columns
  torch::Tensor keep;    // the same columns of the mask, fp32 1/0; undefined without one
  int64_t first = 0;
  int64_t size = 0;
  group_grid::GridRule rule;
};

// Where a block's results go: [out, count] views (any strides) into the layer's result tensors.
struct BlockOutputs {
  torch::Tensor error;        // fp32 err, what the lazy-batch GEMM propagates
  torch::Tensor codes;        // int8 signed codes; undefined without quantization
  torch::Tensor dequantized;  // fp32 q = (code − z)·s, 0 where pruned; may be the input w itself
  torch::Tensor row_loss;     // [out] fp64 accumulator: each row's Σ err² is added to it
};

// Sweeps the block's columns in order. For each column i: code = clamp(round(w/s + z)),
// q = (code − z)·s (0 and code z where pruned; q = w where kept without quantization, when no
// code is written), err = (w − q)/hinv[i, i], and the block's later columns get
// w[:, j] −= err·hinv[i, j].
//   w:    [out, count] fp32, a slice of the working weight (read before the same element of
//         outputs.dequantized is written)
//   hinv: [count, count] fp32, the block's diagonal block of the upper factor U

// The fused sweeps also apply `refresh` (null: none) before the first column.

// One loop over the rows in parallel, each row swept through the block in L1: no per-column
// dispatch. CPU tensors only.
void sweep_block_fused_cpu(const torch::Tensor& w, const torch::Tensor& hinv, const BlockGrid& grid,
                           const GroupRefresh* refresh, int bits, const BlockOutputs& outputs);

// One CUDA kernel launch per block, on the device's current stream (gptq_block_cuda.cu: one to
// four threads per row, the block's part of U in shared memory; errors laid out column-major
// are stored coalesced). CUDA tensors on one device, at most fused_cuda_max_columns() columns. Only
// in builds with PRESSO_WITH_CUDA_KERNELS; elsewhere it throws InternalError.
void sweep_block_fused_cuda(const torch::Tensor& w, const torch::Tensor& hinv,
                            const BlockGrid& grid, const GroupRefresh* refresh, int bits,
                            const BlockOutputs& outputs);

// Whether sweep_block_fused_cuda is compiled in, and the widest block it takes.
bool fused_cuda_available();
int64_t fused_cuda_max_columns();

// Seven to nine LibTorch ops per column, each over all rows at once; any device.
void sweep_block_tensor_ops(const torch::Tensor& w, const torch::Tensor& hinv,
                            const BlockGrid& grid, int bits, const BlockOutputs& outputs);

}  // namespace presso::gptq_internal

// Internal to lib/quant/gptq.cpp: the column sweep inside one lazy-batch block of GPTQ, in three
// implementations that agree up to fp32 rounding (tests compare each against gptq_quantize_ref).
#pragma once

#include <torch/types.h>

namespace presso::gptq_internal {

// The grid of every weight of the block, [out, count] fp32 each; columns may have stride 0 (one
// scale per row).
struct BlockGrid {
  torch::Tensor scale;
  torch::Tensor zero;  // integral values; undefined when symmetric (zero point 0)
  torch::Tensor keep;  // 1 keep, 0 pruned; undefined without a sparsity mask
};

// Where a block's results go: [out, count] views into the layer's result tensors.
struct BlockOutputs {
  torch::Tensor dequantized;  // fp32 q
  torch::Tensor error;        // fp32 err, what the lazy-batch GEMM propagates
  torch::Tensor codes;        // int8 signed codes
  torch::Tensor loss;         // 0-dim fp64 accumulator: Σ err² is added to it
};

// Sweeps the block's columns in order. For each column i: code = clamp(round(w/s + z)),
// q = (code − z)·s (0 and code z where pruned), err = (w − q)/hinv[i, i], and the block's later
// columns get w[:, j] −= err·hinv[i, j].
//   w:    [out, count] fp32, a slice of the working weight (read only)
//   hinv: [count, count] fp32, the block's diagonal block of the upper factor U

// One loop over the rows in parallel, each row swept through the block in L1: no per-column
// dispatch. CPU tensors only.
void sweep_block_fused_cpu(const torch::Tensor& w, const torch::Tensor& hinv, const BlockGrid& grid,
                           int bits, const BlockOutputs& outputs);

// One CUDA kernel launch per block, on the device's current stream (gptq_block_cuda.cu: a warp
// per row, the block's part of U in shared memory). CUDA tensors on one device, at most
// fused_cuda_max_columns() columns. Only in builds with PRESSO_WITH_CUDA_KERNELS; elsewhere it
// throws InternalError.
void sweep_block_fused_cuda(const torch::Tensor& w, const torch::Tensor& hinv,
                            const BlockGrid& grid, int bits, const BlockOutputs& outputs);

// Whether sweep_block_fused_cuda is compiled in, and the widest block it takes.
bool fused_cuda_available();
int64_t fused_cuda_max_columns();

// Seven to nine LibTorch ops per column, each over all rows at once; any device.
void sweep_block_tensor_ops(const torch::Tensor& w, const torch::Tensor& hinv,
                            const BlockGrid& grid, int bits, const BlockOutputs& outputs);

}  // namespace presso::gptq_internal

// Internal to lib/quant/gptq.cpp: GPTQ's lazy-batch updates. After the sweep of a block of
// columns [i1, i2), every later column j owes W[:, j] −= Err[:, i1:i2]·U[i1:i2, j]; the block's
// own columns received their share inside the sweep.
//
// On CUDA they come in two levels: blocks are grouped into spans of about 512 columns; each block
// updates the rest of its span (GEMMs with K = block_size), and at a span's end its errors update
// every later column at once (K = span). On the GPU an fp32 GEMM with K = 128 runs at about half
// the matrix rate and one with K = 512 near it (docs/benchmarks.md), and the first level's GEMMs
// are narrow. On the CPU, where K = 128 is already at the rate, each block updates all later
// columns. A span ends where groups do, so that a group's grid, computed when the sweep reaches
// its first column, reads weights that every earlier column has updated.
#pragma once

#include <torch/types.h>

namespace presso::gptq_internal {

class LazyBatchUpdate {
 public:
  // w: [out, in] fp32 working weight, updated in place; upper: U [in, in]. group_size: of groups
  // whose grids come from the weights during the sweep, 0 when every grid is fixed before it.
  // column_major: the sweep stores block errors column-major (the CUDA kernel's coalesced order).
  LazyBatchUpdate(const torch::Tensor& w, const torch::Tensor& upper, int64_t block_size,
                  int64_t group_size, bool column_major);

  // Where the sweep of block [i1, i2) stores its errors: an [out, i2 − i1] view.
  torch::Tensor block_errors(int64_t i1, int64_t i2) const;
  // The updates owed once block [i1, i2) is swept (its errors stored in block_errors).
  void apply(int64_t i1, int64_t i2);

  int64_t span() const { return span_; }

 private:
  torch::Tensor w_, upper_;
  torch::Tensor errors_;  // [out, span]: the errors of the current span's blocks
  int64_t span_;
};

}  // namespace presso::gptq_internal

// The precision of fp32 matrix products in the calibration forwards. On a CUDA device presso runs
// the block forwards and the XᵀX accumulations of the statistics with TF32 tensor cores (inputs
// rounded to 10 mantissa bits, products exact, fp32 accumulation: 8x the fp32 rate of an H200);
// the Cholesky factorization, the GPTQ/SparseGPT sweeps and every pass's own arithmetic stay in
// full fp32. docs/benchmarks.md ("7B on one GPU") shows the perplexity this costs: none
// measurable. --fp32-matmul turns it off. On the CPU there is no TF32 and nothing changes.
#pragma once

#include <torch/types.h>

namespace presso {

// While alive, fp32 matrix products on CUDA devices use TF32 when `enable` is true and full fp32
// when false; the previous setting comes back at the end of the scope. Not thread-safe (a
// process-wide flag): the driver's forwards all run on one thread.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool enable);
  ~Tf32Scope();
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool previous_;
};

}  // namespace presso

// GPTQ (Frantar et al., 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers"): quantize a weight one input column at a time, pushing each column's
// rounding error onto the columns not yet quantized through the inverse Hessian of the layer
// objective ‖WX − ŴX‖², so the quantized layer reproduces the outputs on the calibration data.
//
// A port of the original implementation (IST-DASLab/gptq: gptq.py `GPTQ.fasterquant` at commit
// 9f2abd3, quant.py `Quantizer.find_params` at 2e22596), step for step:
//   1. dead inputs (diag H = 0) get H_jj = 1 and their weight column set to 0;
//   2. with act_order the columns are visited by decreasing diag H (a stable sort, so ties keep
//      their column order), W and H permuted alike, the permutation undone at the end;
//   3. H + damp·mean(diag H)·I is factored: Cholesky, its inverse, and the upper Cholesky factor U
//      of H⁻¹, whose row j holds the OBS update of the columns after j (the paper's "Step 3:
//      Cholesky Reformulation"). When a factorization fails (H not positive definite in fp32),
//      the damping is raised tenfold and retried — the original has no retry;
//   4. the sweep: blocks of block_size columns; inside a block each column is rounded on its grid,
//      err = (w − q)/U_jj, and the block's later columns get w −= err·U_j,· at once; after the
//      block, the columns to its right get W −= Err·U[block, right] ("Step 2: Lazy Batch-Updates").
// Grids: per channel (group_size −1) from the whole weight before step 1; static_groups from the
// weight after step 1, consecutive groups in the original column order, all before the sweep;
// otherwise (the original's default) during the sweep: when the visited position p is a multiple
// of group_size, the grid of positions [p, p + group_size) comes from the working weight as it
// stood when p's block began — the original reads those columns from its outer W, which the
// columns of the current block update only at the block's end. With act_order those groups are in
// visiting order, and g_idx maps each original column to its group.
//
// The grid formula is compressed-tensors' (grid.h), which gives the original quantizer's grids.
// Asymmetric: both clamp min <= 0 <= max, scale = (max − min)/(2^b − 1), and the zero point is
// round(−min/scale) in the original's unsigned codes [0, 2^b − 1], q_min + round(−min/scale) in
// our signed codes [q_min, q_max]: the same grid, shifted by 2^(b−1). Symmetric: both use scale
// 2·max(|min|, max)/(2^b − 1) with the zero in the middle (2^(b−1) unsigned, 0 signed). They
// differ only (a) at exact rounding ties of x/scale when the asymmetric zero point is odd (the
// original rounds x/scale, then adds the zero point; compressed-tensors rounds the sum, both half
// to even), (b) for a group that is entirely 0 when its grid is found (dead or pruned columns:
// the original uses the range [−1, 1], we a scale of eps; those weights stay 0 and get the zero
// point either way) and (c) for a symmetric group with no negative weight, where the original
// keeps min = 0, which halves the scale and clips the upper half of the range (a quirk we do not
// copy).
//
// Sparsity: a mask [out, in] (true = keep) is honoured as SparseGPT's combined prune + quantize
// does (IST-DASLab/sparsegpt, sparsegpt.py `fasterprune`): masked-out weights take part in the
// sweep like the others, receive the error feedback of earlier columns, and at their turn are set
// to 0 — their code is the zero point — with the error (w − 0)/U_jj pushed onward. Grids are
// computed from the kept weights only (masked-out ones read as 0, which every grid holds).
// llm-compressor's `preserve_zeros` instead withholds the updates from masked-out weights, which
// loses the compensation that the OBS step assigns to them.
//
// Pruning chosen during the sweep (SparseGPT, Frantar & Alistarh 2023; IST-DASLab/sparsegpt,
// sparsegpt.py `fasterprune`, the same loop): the mask is not given but picked as the sweep goes,
// by the OBS saliency w²/U_jj² of the weights as they stand — unstructured, once per block of
// block_size columns from the block's weights when it begins (SweepPruning::block_mask); N:M,
// per row when the sweep reaches the first column of each group of m, from that group's current
// weights. Pruned weights then take the path of masked-out ones above. Without quantization
// (GptqOptions::quantize false) kept weights are left as they are (q = w, no error), so only the
// pruned ones push errors onward — SparseGPT alone; with it, prune and quantize share one sweep —
// the original's `wbits`. Group grids computed when a group begins see the block's unstructured
// mask (chosen first) but not N:M choices still to come.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "lib/quant/grid.h"
#include "lib/quant/quantize.h"
#include "lib/quant/scheme.h"

namespace presso {

// How the columns of one block are swept. All give the same results up to fp32 rounding.
enum class GptqSweepKernel {
  kAuto,       // kFusedCpu for CPU tensors; kFusedCuda for CUDA tensors where the build has it
               // and block_size <= gptq_fused_cuda_max_block(); kTensorOps otherwise
  kFusedCpu,   // one loop over the rows of the block, in parallel (CPU only)
  kFusedCuda,  // one CUDA kernel per block, a thread per row (CUDA only; builds with a CUDA
               // compiler and a CUDA LibTorch, see gptq_fused_cuda_available())
  kTensorOps,  // a few LibTorch ops per column, each over all rows (any device)
};

// Whether this build has the fused CUDA sweep, and the widest block (block_size) it takes; 0
// without it.
bool gptq_fused_cuda_available();
int64_t gptq_fused_cuda_max_block();

// Masks chosen during the sweep (see the header comment). Active when block_mask is set or n > 0.
struct SweepPruning {
  // Unstructured: called before each block's first column with the block's weights as they stand
  // [out, count] fp32 and the OBS denominators U_jj of its columns [count]; returns bool
  // [out, count], true = keep.
  std::function<torch::Tensor(const torch::Tensor& block_weight,
                              const torch::Tensor& inverse_diagonal)>
      block_mask;
  // N:M: in each row, n of every m consecutive columns, the lowest w²/U_jj² (ties: the earlier
  // column). m must divide block_size and the input width.
  int n = 0;
  int m = 0;

  bool active() const { return static_cast<bool>(block_mask) || n > 0; }
};

struct GptqOptions {
  QuantScheme scheme;
  bool quantize = true;  // false: the sweep only prunes (SparseGPT alone); scheme unused
  double damp = 0.01;          // fraction of mean(diag H) added to the diagonal
  int64_t block_size = 128;    // columns per lazy-batch block
  bool act_order = false;      // visit columns by decreasing diag H
  bool static_groups = false;  // group grids from the weight before the sweep (see above)
  GridOptions grid;            // scale dtype, GPTQ-v1's zero point rule, MSE range search
  int max_damp_retries = 3;    // tenfold damping raises after a failed factorization
  GptqSweepKernel kernel = GptqSweepKernel::kAuto;
  SweepPruning pruning;  // masks chosen during the sweep; not with act_order or a given mask
};

// The Hessian after steps 1-3, in visiting order. One factorization serves every linear with the
// same input (q/k/v, gate/up) under the same act_order and damping.
struct GptqHessian {
  torch::Tensor inverse_factor;  // U [in, in] fp32: upper Cholesky factor of (H + damping)⁻¹
  torch::Tensor dead;            // [in] bool, original order: inputs with diag H = 0
  std::optional<torch::Tensor> perm;  // [in] int64 with act_order: visited position -> column
  double damp_used = 0;               // the damping fraction that factored
  int retries = 0;                    // failed factorizations before it
};

struct GptqResult {
  // Codes, grid and (when the groups are not consecutive columns) g_idx, in original column order;
  // empty without quantization.
  QuantizedWeight weight;
  // fp32 [out, in]: dequantize(weight), or without quantization the updated kept weights (0
  // where pruned).
  torch::Tensor dequantized;
  torch::Tensor mask;  // bool [out, in], true = kept: the given mask or the one chosen; else undefined
  // Σ (w − q)²/U_jj² / 2 over all weights: the original's printed "error", the OBS estimate of
  // the increase of the layer objective (in the units of the H given).
  double loss = 0;
  double damp_used = 0;  // as in GptqHessian, for the pass to log
  int retries = 0;
};

// The original GPTQ's `--mse` range search (IST-DASLab/gptq quant.py: maxshrink 0.8, grid 100,
// norm 2.4, no early stop).
MseSearch gptq_mse_search();

// What the user should know when prepare_gptq_hessian had to raise the damping (`requested` was
// the option): "the Hessian did not factor with damp 0.01; raised to 0.1 (1 retry)"; "" when the
// first damping factored.
std::string damping_note(double requested, const GptqHessian& hessian);

// Steps 1-3. hessian [in, in] (2XᵀX/n as LinearStatistics::hessian() gives; any positive scale
// works, only the loss depends on it) on any device; the result lives on `device`. UserError
// naming `tensor_name` for a non-square or non-finite H, bad options, or a factorization that
// still fails after max_damp_retries raises.
GptqHessian prepare_gptq_hessian(const torch::Tensor& hessian, const GptqOptions& options,
                                 torch::Device device, const std::string& tensor_name = "");

// Step 4 on weight [out, in] (any float dtype) with a prepared Hessian; computes on the weight's
// device. `mask`: optional [out, in] bool, true = keep. options.act_order must be the one the
// Hessian was prepared with.
GptqResult gptq_sweep(const torch::Tensor& weight, const GptqHessian& hessian,
                      const GptqOptions& options,
                      const std::optional<torch::Tensor>& mask = std::nullopt,
                      const std::string& tensor_name = "");

// Both: prepare_gptq_hessian on the weight's device, then gptq_sweep.
GptqResult gptq_quantize(const torch::Tensor& weight, const torch::Tensor& hessian,
                         const GptqOptions& options,
                         const std::optional<torch::Tensor>& mask = std::nullopt,
                         const std::string& tensor_name = "");

// The layer objective tr(ΔW H ΔWᵀ) of replacing `weight` by `approx` (both [out, in]) under
// H [in, in]: ‖WX − ŴX‖² when H = XᵀX. Computed in fp64.
double layer_objective(const torch::Tensor& weight, const torch::Tensor& approx,
                       const torch::Tensor& hessian);

}  // namespace presso

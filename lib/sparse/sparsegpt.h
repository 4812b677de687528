// SparseGPT (Frantar & Alistarh, 2023, "SparseGPT: Massive Language Models Can Be Accurately
// Pruned in One-Shot"; IST-DASLab/sparsegpt at 147d215, sparsegpt.py `fasterprune`): prune a
// weight with the OBS sweep of GPTQ (lib/quant/gptq.h) — one column at a time, each pruned weight's
// error pushed onto the columns not yet visited through the inverse Hessian — choosing the mask
// as the sweep goes by the OBS saliency w²/[H⁻¹]²_jj, where [H⁻¹]_jj is the diagonal of the upper
// Cholesky factor U of the damped H⁻¹ (what the original calls Hinv):
//   unstructured  before each block of block_size columns, over the block's weights as the
//                 earlier blocks left them, the pruned_count(out · count, sparsity) lowest
//                 saliencies of the whole block (its comparison group), ties by position. The
//                 original prunes every saliency <= the sorted block's element int(n · s): one
//                 weight more per block, and every tie of it; we prune exactly int(n · s);
//   N:M           per row, when the sweep reaches the first column of each group of m: the n
//                 lowest saliencies of the group's current weights (the original's topk).
// With a quantization scheme the same sweep also rounds the kept weights (the original's
// `wbits`, which is per-channel only; group grids follow GPTQ's rule), sharing GPTQ's grids,
// dead-column handling, damping retries and kernels.
#pragma once

#include <torch/types.h>

#include "lib/quant/gptq.h"
#include "lib/sparse/pattern.h"

namespace presso {

// The SweepPruning (gptq.h) that makes gptq_sweep SparseGPT: unstructured at `sparsity` in
// [0, 1), or `pattern` N:M (sparsity ignored). UserError for a bad sparsity or pattern.
SweepPruning sparsegpt_pruning(double sparsity, const SparsityPattern& pattern);

}  // namespace presso

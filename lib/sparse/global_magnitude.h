// Global magnitude pruning: one ranking of |W| across several layers, with a per-layer floor.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

namespace presso {

// Masks [out_i, in_i] bool (true = kept) for weights [out_i, in_i], pruned together as in Gupta
// et al. 2022, "Is Complexity Required for Neural Network Pruning? A Case Study on Global
// Magnitude Pruning": one threshold on |W| over all the given layers instead of one per layer.
//
// Counts. Exactly K = pruned_count(T, sparsity) weights are pruned, T the weights of all
// layers. The global order is |W| in fp32 ascending (exact for fp32/fp16/bf16 weights), ties
// broken by the layer's index in `weights`, then row-major position — the order of a stable sort
// of the layers' |W| concatenated in turn, so with no floor the result is magnitude_mask at
// kLayer scope on that concatenation.
//
// Floor. Global magnitude can empty a layer whose weights are all small (the paper's remedy,
// the Minimum Threshold, keeps a fixed number of weights in every layer). Here the floor is a
// fraction, independent of layer size: layer i of n_i weights loses at most
// cap_i = pruned_count(n_i, 1 − min_keep), so it keeps at least n_i − cap_i ≈ min_keep · n_i.
// The cut moves up the global order, skipping the weights of layers already at their cap, until
// K are pruned: layer i loses p_i = min(cap_i, c_i), where c_i counts its weights before the cut
// and the cut is the first position where Σ p_i = K. A capped layer loses its cap_i smallest;
// what its floor saves is taken from the other layers, in the same global order, so the total
// stays exactly K. min_keep = 0 is plain global magnitude. UserError when Σ cap_i < K (the
// floor makes the target unreachable), when min_keep is outside [0, 1], and as magnitude_mask
// does for a bad weight or sparsity; `tensor_names`, empty or one per weight, name the layers.
//
// Memory: layers are never concatenated. The cut is found by radix selection on the fp32 bit
// patterns of |W| (for non-negative floats the integer order is the value order): a histogram
// of the high 16 bits, then of the low 15 bits within the chosen bin, one layer at a time
// (256 KiB kept per layer); each mask is then a comparison with the cut, or a selection of the
// layer's own k lowest for a layer at its cap. Beyond the masks, the extra memory is a few
// temporaries the size of one layer.
std::vector<torch::Tensor> global_magnitude_masks(
    const std::vector<torch::Tensor>& weights, double sparsity, double min_keep,
    const std::vector<std::string>& tensor_names = {});

// What global_magnitude_masks would prune in each layer (p_i), with the layers read one at a
// time through `load(i)`, i < layers, never all in memory (three reads of each): for a model
// whose layers stream from a checkpoint. Layer i's mask is then its own p_i lowest |W| with
// ties by position (lowest_k_per_row on the flattened |W|), the same as the masks'.
std::vector<int64_t> global_magnitude_counts(size_t layers,
                                             const std::function<torch::Tensor(size_t)>& load,
                                             double sparsity, double min_keep,
                                             const std::vector<std::string>& tensor_names = {});

// The floor a caller should use unless told otherwise: half the target density,
// (1 − sparsity) / 2. At 50 % sparsity no layer keeps fewer than 25 % of its weights (loses more
// than 75 %); at 90 % none keeps fewer than 5 %. It scales with the target, so it never binds
// on a layer pruned near the average and always leaves room to redistribute (feasible whenever
// every layer has more than 2 / (1 − sparsity) weights).
double default_global_min_keep(double sparsity);

}  // namespace presso

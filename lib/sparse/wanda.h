// Wanda's importance scores and OWL's layer-wise sparsities, as pure functions (the pass is
// passes/wanda.cpp; the mask itself comes from mask_from_scores, mask.h).
//
// Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for LLMs"; locuslab/wanda
// lib/prune.py prune_wanda): S_ij = |W_ij|·‖X_j‖₂, compared within each output row, or in N:M
// groups along the input dimension.
//
// OWL (Yin et al. 2024, "Outlier Weighed Layerwise Sparsity"; as llm-compressor computes it,
// modifiers/pruning/sparsegpt/sgpt_base.py _infer_owl_layer_sparsity): each decoder layer's share
// of outlier scores D_l (in percent) sets its sparsity; layers with more outliers keep more
// weights, and the layers' sparsities average to the target.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace presso {

// |W_ij|·n_j: fp32 [out, in] on the weight's device, from weight [out, in] and input_norm [in]
// (a per-input-channel activation norm: Wanda's sqrt(Σ_tokens x_j²), OWL's mean over sequences of
// the per-sequence norm). UserError naming the tensor for a weight that is not a finite matrix,
// or a norm that is not a finite, non-negative vector of width `in`.
torch::Tensor wanda_scores(const torch::Tensor& weight, const torch::Tensor& input_norm,
                           const std::string& tensor_name = "");

// OWL's outlier ratio of one layer, in percent: 100 · #{S > threshold_m · mean(S)} / #S over the
// score tensors of all its linears taken together (each any shape, finite). 0 for no scores.
double owl_outlier_ratio(const std::vector<torch::Tensor>& scores, double threshold_m);

// OWL's layer sparsities from the layers' outlier ratios (in model order): D is rescaled to
// [0, 2λ] by (D − min D)/(max D − min D)·2λ, then s_l = sparsity − (D_l − mean D), so they
// average to `sparsity` and stay within ±2λ of it. Where every ratio is equal (one layer, say),
// upstream divides 0 by 0; here every layer gets `sparsity`.
std::vector<double> owl_layer_sparsities(const std::vector<double>& outlier_ratios, double sparsity,
                                         double lambda);

}  // namespace presso

// Reusable option groups (targets, weight quantization, OBS solver, act order, pruning, AWQ) and
// their checks, from which passes/ build their schemas; the translations of llm-compressor's
// modifiers (llmc_modifiers.h) write these keys, so the keys the translator writes and those the
// passes read stay one contract. Torch-free.
#pragma once

#include <string>
#include <vector>

#include "lib/recipe/schema.h"
#include "lib/sparse/pattern.h"

namespace presso {

// targets (default [Linear]) and ignore (default []): patterns matched against full linear
// names; see targets.h for the matching rules. `re:` patterns are compiled here, so a bad
// regular expression is a recipe error with its line.
std::vector<OptionSpec> target_options();

// bits (2-8, default 4), group_size (-1 = one group per output row, else >= 1; default 128),
// symmetric (default true), mse (grid from an MSE search instead of min/max; default false).
std::vector<OptionSpec> quant_options();
// group_size must divide the input width of every targeted linear (packing needs whole groups).
std::vector<std::string> check_quant_shape(const PassOptions& options, const LinearInfo& linear);

// damp (fraction of mean(diag H) added to the diagonal; default 0.01) and block_size (columns
// per lazy-batch block; default 128): the OBS solver shared by GPTQ and SparseGPT.
std::vector<OptionSpec> obs_options();

// act_order (visit columns by decreasing diag H; default false), static_groups (group grids
// fixed from the original weights before the sweep, so act_order needs no g_idx: the
// compressed-tensors actorder 'weight' that llm-compressor's GPTQModifier defaults to and every
// fast kernel runs; false: each group's grid is found during the sweep from the updated weights,
// as the original GPTQ does, and with act_order the groups follow the visiting order and g_idx is
// saved — actorder 'group', deprecated in compressed-tensors 0.18; absent: the value of
// act_order, so plain GPTQ keeps the original's grids and act-order is static unless asked),
// true_sequential (quantize the linears of a block in forward order, each seeing its quantized
// predecessors; default true). Every combination is valid.
std::vector<OptionSpec> act_order_options();

// A pruning pattern's text (lib/sparse/pattern.h: unstructured, or N:M = in each output row, N
// zeros in every M consecutive input columns, the meaning of llm-compressor's mask_structure):
// "" when `text` is "unstructured" or "N:M" with 0 < N < M, else the problem.
std::string check_sparsity_pattern(const std::string& text);

// sparsity (fraction of weights zeroed, [0, 1); required unless the pattern is N:M, and then it
// must be N/M if given) and pattern ("unstructured", default, or "N:M").
std::vector<OptionSpec> pruning_options();
std::vector<OptionProblem> check_pruning(const PassOptions& options);
// With N:M, M must divide the input width.
std::vector<std::string> check_pruning_shape(const PassOptions& options, const LinearInfo& linear);
// The fraction of each linear's weights that the pruning options remove: N/M for an N:M
// pattern, else sparsity.
double pruned_fraction(const PassOptions& options);
// true_sequential for the passes that prune from calibration statistics (default false: as the
// originals, every linear of a block takes its statistics from one run of the block; true
// gathers each input group again after the groups before it are pruned).
OptionSpec pruning_sequential_option();

// OWL's layer-wise sparsity (lib/sparse/wanda.h): sparsity_profile ("uniform", default, or "owl":
// each decoder layer's sparsity from its share of outlier scores), owl_threshold_m (a score is an
// outlier above M times its layer's mean; > 0, default with owl 5, the OWL paper's) and
// owl_lambda (the layers' sparsities spread over sparsity ± 2λ at most; default with owl 0.08).
std::vector<OptionSpec> owl_options();
// The OWL keys need sparsity_profile: owl, an unstructured sparsity, and
// λ <= min(sparsity, 1 − sparsity)/2, which keeps every layer's sparsity in [0, 1).
std::vector<OptionProblem> check_owl(const PassOptions& options);
// M and λ as given or their defaults; call only with sparsity_profile owl.
double owl_threshold_m(const PassOptions& options);
double owl_lambda(const PassOptions& options);

// duo_scaling (true|false|both), n_grid (default 20), clip (search a weight clipping ratio after
// scaling, as the original llm-awq does; default true), mappings (default []: the model family's).
std::vector<OptionSpec> awq_options();

// weighted_mse (default false): the range search weighs each input column's error by the mean x²
// of its input channel over the calibration data (llama.cpp's importance matrix, llm-compressor's
// imatrix_mse observer); for rtn and gptq it implies mse, for awq it weighs the clip search.
std::vector<OptionSpec> importance_options();

// Concatenates option groups in order.
std::vector<OptionSpec> join_options(std::vector<std::vector<OptionSpec>> groups);

}  // namespace presso

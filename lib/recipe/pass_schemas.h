// Reusable option groups (targets, weight quantization, OBS solver, act order, pruning, AWQ) and
// the schemas of the passes that llm-compressor recipes translate to. passes/ return these
// schemas (appending options of their own if they need), so the key names that the translator
// writes and those the passes read stay one contract. Torch-free.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "lib/recipe/schema.h"

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
// fixed from the original weights before the sweep, so act_order needs no g_idx; default false:
// each group's grid is found during the sweep from the updated weights, and with act_order the
// groups follow the visiting order and g_idx is saved), true_sequential (quantize the linears of
// a block in forward order, each seeing its quantized predecessors; default true). The defaults
// are the original GPTQ's (IST-DASLab/gptq, gptq.py fasterquant); every combination is valid.
std::vector<OptionSpec> act_order_options();

// sparsity (fraction of weights zeroed, [0, 1); required when unstructured) and mask_structure
// ("0:0" unstructured, default, or "N:M": N zeros in every M consecutive inputs).
std::vector<OptionSpec> pruning_options();
std::vector<OptionProblem> check_pruning(const PassOptions& options);
// With N:M, M must divide the input width.
std::vector<std::string> check_pruning_shape(const PassOptions& options, const LinearInfo& linear);
// The N and M of a mask_structure that passed validation ("0:0" gives {0, 0}).
std::pair<int, int> parse_mask_structure(const std::string& text);

// duo_scaling (true|false|both), n_grid (default 20), clip (search a weight clipping ratio after
// scaling, as the original llm-awq does; default true), mappings (default []: the model family's).
std::vector<OptionSpec> awq_options();

// Concatenates option groups in order.
std::vector<OptionSpec> join_options(std::vector<std::vector<OptionSpec>> groups);

// The passes llm-compressor modifiers translate to (and magnitude, which has no modifier here).
PassSchema rtn_schema();        // QuantizationModifier: round to nearest on a min/max grid
PassSchema gptq_schema();       // GPTQModifier
PassSchema awq_schema();        // AWQModifier (scales; its grid is the following quantizer's)
PassSchema sparsegpt_schema();  // SparseGPTModifier
PassSchema wanda_schema();      // WandaPruningModifier
PassSchema magnitude_schema();  // magnitude pruning, no calibration
std::vector<PassSchema> standard_schemas();

}  // namespace presso

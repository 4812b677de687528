// lib/export internal: the `quantization_config` object that config.json carries for each packed
// format, built from the linears the writer quantized and the model's full list of linears.
// Field sets and the upstream files they were checked against: docs/formats.md.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/export/linear_plan.h"

namespace presso {

class Model;

// The compressed-tensors release whose layout (dense cross-word packing) presso writes.
inline constexpr const char* kCompressedTensorsVersion = "0.18.0";

// compressed-tensors: one config group per distinct (bits, group size, symmetry, act-order)
// in the order first seen; a single group targets "Linear", several list their linears by full
// name. `ignore` lists every other linear of the model. Keys sorted, as upstream's json.dump
// with sort_keys=True writes them. With nothing quantized (a pruned model), only the
// sparsity_config and the version keys.
nlohmann::json compressed_tensors_config(const std::vector<LinearPlan>& quantized,
                                         const std::vector<std::string>& ignore,
                                         const std::optional<nlohmann::json>& sparsity);
// compressed-tensors' sparsity_config for the pruned linears of `stored` (nullopt when none is
// pruned): storage `sparse-24-bitmask` when every pruned linear is 2:4 and unquantized, else
// `dense`; the structure shared by all of them ("2:4", or "unstructured"); the pruned linears as
// targets ("Linear" when they are all the block linears); `global_sparsity` as given.
std::optional<nlohmann::json> compressed_tensors_sparsity(const Model& model,
                                                          const std::vector<LinearPlan>& stored,
                                                          double global_sparsity);
// Whether the pruned linears of `stored` go compressed as `sparse-24-bitmask`: there is at least
// one, every one is 2:4 and unquantized (compressed-tensors compresses `.weight` tensors only, so
// a packed linear cannot be, and one sparsity_config names one storage), and the model stores no
// linear transposed (GPT-2's Conv1D).
bool sparse_24_storage(const Model& model, const std::vector<LinearPlan>& stored);
// "gptq" (v1, zero points minus one) for symmetric schemes, which every GPTQ loader reads and
// vLLM runs on marlin; "gptq_v2" for asymmetric ones, which GPTQModel loads only in v2 (or from
// its own v1 writer) and vLLM's gptq kernel reads with use_v2_format.
const char* gptq_checkpoint_format(const QuantScheme& scheme);
// GPTQ, `checkpoint_format` as gptq_checkpoint_format(); `quantized` must share one scheme
// (format_problems).
nlohmann::json gptq_config(const std::vector<LinearPlan>& quantized);
// AutoAWQ GEMM, `zero_point: true` whatever the scheme (a symmetric one stores zeros of 8): vLLM's
// awq_marlin has no kernel for uint4 without zero points; `not_converted` (may be empty: null)
// as modules_to_not_convert.
nlohmann::json awq_config(const std::vector<LinearPlan>& quantized,
                          const std::vector<std::string>& not_converted);

}  // namespace presso

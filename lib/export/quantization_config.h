// lib/export internal: the `quantization_config` object that config.json carries for each packed
// format, built from the linears the writer quantized and the model's full list of linears.
// Field sets and the upstream files they were checked against: docs/formats.md.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/export/checkpoint_writer.h"

namespace presso {

// The compressed-tensors release whose layout (dense cross-word packing) presso writes.
inline constexpr const char* kCompressedTensorsVersion = "0.18.0";

// Full names of every linear in the decoder blocks, block by block in the family's order.
std::vector<std::string> block_linear_names(const Model& model);
// Every linear module of the model as transformers builds it: OPT's project_in / project_out,
// the block linears, and lm_head (a module of its own even when its weight is tied).
std::vector<std::string> model_linear_names(const Model& model);

// compressed-tensors: one config group per distinct (bits, group size, symmetry, act-order)
// in the order first seen; a single group targets "Linear", several list their linears by full
// name. `ignore` lists every other linear of the model. Keys sorted, as upstream's json.dump
// with sort_keys=True writes them.
nlohmann::json compressed_tensors_config(const std::vector<PlannedQuantLinear>& quantized,
                                         const std::vector<std::string>& ignore);
// GPTQ v1 (`checkpoint_format: gptq`); `quantized` must share one scheme (format_problems).
nlohmann::json gptq_config(const std::vector<PlannedQuantLinear>& quantized);
// AutoAWQ GEMM; `not_converted` (may be empty: null) as modules_to_not_convert.
nlohmann::json awq_config(const std::vector<PlannedQuantLinear>& quantized,
                          const std::vector<std::string>& not_converted);

// The quantization_config for `format`, or nullopt when config.json gets none (dense, or a
// compressed-tensors model with nothing quantized, as compressed-tensors writes no config then).
// Throws UserError listing checkpoint_problems when the format cannot hold what was quantized.
std::optional<nlohmann::json> quantization_config_for(
    OutputFormat format, const Model& model, const std::vector<PlannedQuantLinear>& quantized);

}  // namespace presso

// lib/model: `presso inspect` — a human-readable summary of a checkpoint directory.
#pragma once

#include <string>

namespace presso {

// Family, sizes, rope, parameter count, stored dtypes and bytes, tied embeddings and any
// quantization_config. Reads config.json and the safetensors headers only, no weights.
// UserError naming every tensor that is missing or whose shape disagrees with config.json.
std::string inspect_model(const std::string& dir);

}  // namespace presso

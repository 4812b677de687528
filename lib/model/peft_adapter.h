// lib/model: a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, the form presso
// writes beside a compressed checkpoint and transformers + PEFT load) read as low-rank paths for
// a model's linears, so `presso eval --adapter` runs the pair as PEFT does: y = xWᵀ +
// (alpha / r)·(xAᵀ)Bᵀ per module.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lib/model/block.h"

namespace presso {

// The paths by full linear name, B already scaled by the module's lora_alpha / r (rank_pattern
// and alpha_pattern honoured; use_rslora's alpha / √r too). `linears` are the model's linear
// names. UserError naming the file and key or tensor for a missing file, an adapter type other
// than LORA, tensors of a module the model does not have, or shapes that disagree.
std::map<std::string, LowRankPair> read_peft_adapter(const std::string& dir,
                                                     const std::vector<std::string>& linears);

}  // namespace presso

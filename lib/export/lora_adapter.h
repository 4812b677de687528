// lib/export internal: the low-rank paths of a compressed model written as a PEFT LoRA adapter
// (`adapter_config.json` + `adapter_model.safetensors`), the form transformers + PEFT and vLLM's
// LoRA loader read. Tensor names `base_model.model.<module>.lora_A.weight` [r, in] and
// `…lora_B.weight` [out, r]; lora_alpha = r for every module (rank_pattern / alpha_pattern when
// ranks differ), so PEFT's scaling alpha / r is 1 and the adapter adds exactly B·A.
#pragma once

#include <map>
#include <string>

#include "lib/model/block.h"

namespace presso {

class LoraAdapter {
 public:
  // The path of linear `name` ("model.layers.3.mlp.up_proj"); kept on the CPU in fp32.
  void add(const std::string& name, const LowRankPair& pair);
  bool empty() const { return pairs_.empty(); }
  // Writes `dir` (created) with both files; `base_model` is recorded as
  // base_model_name_or_path.
  void write(const std::string& dir, const std::string& base_model) const;

 private:
  std::map<std::string, LowRankPair> pairs_;
};

}  // namespace presso

#include "lib/export/lora_adapter.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/io/safetensors.h"

namespace presso {

void LoraAdapter::add(const std::string& name, const LowRankPair& pair) {
  if (pair.a.dim() != 2 || pair.b.dim() != 2 || pair.a.size(0) != pair.b.size(1)) {
    fail_internal("low-rank path of '{}': A [r, in] and B [out, r] do not agree", name);
  }
  pairs_[name] = LowRankPair{pair.a.to(torch::kCPU, torch::kFloat32).contiguous(),
                             pair.b.to(torch::kCPU, torch::kFloat32).contiguous()};
}

void LoraAdapter::write(const std::string& dir, const std::string& base_model) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail_user("{}: cannot create the adapter directory: {}", dir, ec.message());
  // PEFT (peft/utils/save_and_load.py) saves module names under "base_model.model." and drops
  // the adapter name from the keys.
  SafetensorsWriter tensors(dir + "/adapter_model.safetensors", {{"format", "pt"}});
  std::set<std::string> modules;
  std::map<std::string, int64_t> ranks;
  for (const auto& [name, pair] : pairs_) {
    tensors.add("base_model.model." + name + ".lora_A.weight", pair.a);
    tensors.add("base_model.model." + name + ".lora_B.weight", pair.b);
    modules.insert(name.substr(name.rfind('.') + 1));
    ranks[name] = pair.a.size(0);
  }
  tensors.finish();
  int64_t rank = 0;
  for (const auto& [name, r] : ranks) rank = std::max(rank, r);
  nlohmann::json rank_pattern = nlohmann::json::object();
  for (const auto& [name, r] : ranks) {
    if (r != rank) rank_pattern[name] = r;
  }
  // LoraConfig fields (peft/tuners/lora/config.py) that the loaders read; alpha = r keeps the
  // scaling at 1 for every module.
  const nlohmann::json config = {
      {"alpha_pattern", rank_pattern},
      {"base_model_name_or_path", base_model},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"lora_alpha", rank},
      {"lora_dropout", 0.0},
      {"modules_to_save", nullptr},
      {"peft_type", "LORA"},
      {"r", rank},
      {"rank_pattern", rank_pattern},
      {"target_modules", modules},
      {"task_type", "CAUSAL_LM"},
      {"use_dora", false},
      {"use_rslora", false},
  };
  write_file_atomically(dir + "/adapter_config.json", config.dump(2) + "\n");
}

}  // namespace presso

#include "lib/model/peft_adapter.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/io/safetensors.h"

namespace presso {
namespace {

constexpr const char* kPrefix = "base_model.model.";

// A pattern key of rank_pattern / alpha_pattern matches a module whose name ends with it
// (PEFT's get_pattern_key: the key, or the key after a dot, at the end of the name).
const nlohmann::json* pattern_for(const nlohmann::json& patterns, const std::string& name) {
  if (!patterns.is_object()) return nullptr;
  for (auto it = patterns.begin(); it != patterns.end(); ++it) {
    const std::string& key = it.key();
    if (name == key ||
        (name.size() > key.size() && name.compare(name.size() - key.size(), key.size(), key) == 0 &&
         name[name.size() - key.size() - 1] == '.')) {
      return &it.value();
    }
  }
  return nullptr;
}

}  // namespace

std::map<std::string, LowRankPair> read_peft_adapter(const std::string& dir,
                                                     const std::vector<std::string>& linears) {
  const std::string config_path = dir + "/adapter_config.json";
  const auto config = parse_json_input(read_file_bytes(config_path), config_path);
  if (!config.is_object()) fail_user("{}: the top level is not a JSON object", config_path);
  if (config.value("peft_type", std::string()) != "LORA") {
    fail_user("{}: key 'peft_type': presso reads LORA adapters only", config_path);
  }
  if (!config.contains("r") || !config["r"].is_number_integer() || config["r"].get<int64_t>() < 1) {
    fail_user("{}: key 'r': missing or not a positive integer", config_path);
  }
  if (config.value("use_dora", false)) {
    fail_user("{}: key 'use_dora': DoRA is not supported", config_path);
  }
  const double r = config["r"].get<double>();
  const double alpha = config.value("lora_alpha", r);
  const bool rslora = config.value("use_rslora", false);
  const nlohmann::json rank_pattern = config.value("rank_pattern", nlohmann::json::object());
  const nlohmann::json alpha_pattern = config.value("alpha_pattern", nlohmann::json::object());

  const std::string tensors_path = dir + "/adapter_model.safetensors";
  SafetensorsFile tensors(tensors_path);
  const std::set<std::string> known(linears.begin(), linears.end());
  std::map<std::string, LowRankPair> pairs;
  for (const auto& key : tensors.names()) {
    const std::string suffix = ".lora_A.weight";
    if (key.rfind(kPrefix, 0) != 0 || key.size() <= suffix.size() + std::string(kPrefix).size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string module = key.substr(std::string(kPrefix).size(),
                                          key.size() - std::string(kPrefix).size() - suffix.size());
    if (!known.count(module)) {
      fail_user("{}: tensor '{}' is for '{}', which is not a linear of this model", tensors_path,
                key, module);
    }
    const std::string b_key = std::string(kPrefix) + module + ".lora_B.weight";
    if (!tensors.contains(b_key)) {
      fail_user("{}: tensor '{}' is missing (its lora_A is present)", tensors_path, b_key);
    }
    torch::Tensor a = tensors.load(key, torch::kFloat32);
    torch::Tensor b = tensors.load(b_key, torch::kFloat32);
    if (a.dim() != 2 || b.dim() != 2 || a.size(0) != b.size(1)) {
      fail_user("{}: '{}' and '{}' are not A [r, in] and B [out, r]", tensors_path, key, b_key);
    }
    const nlohmann::json* module_rank = pattern_for(rank_pattern, module);
    const nlohmann::json* module_alpha = pattern_for(alpha_pattern, module);
    const double rank = module_rank ? module_rank->get<double>() : r;
    const double module_alpha_value = module_alpha ? module_alpha->get<double>() : alpha;
    if (static_cast<int64_t>(rank) != a.size(0)) {
      fail_user("{}: '{}' has rank {}, but adapter_config.json says {}", tensors_path, key,
                a.size(0), rank);
    }
    const double scaling = module_alpha_value / (rslora ? std::sqrt(rank) : rank);
    pairs[module] = LowRankPair{a, b * scaling};
  }
  if (pairs.empty()) fail_user("{}: no lora_A / lora_B tensors", tensors_path);
  return pairs;
}

}  // namespace presso

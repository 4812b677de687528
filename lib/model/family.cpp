#include "lib/model/family.h"

#include <fmt/format.h>

#include <algorithm>

namespace presso {

std::string FamilySpec::block_name(int index) const {
  return prefix + fmt::format(fmt::runtime(block_prefix), index);
}

std::string FamilySpec::block_label(int index) const {
  std::string name = block_name(index);
  if (!name.empty() && name.back() == '.') name.pop_back();
  return fmt::format("block {} ({})", index, name);
}

const ModuleSpec* FamilySpec::find_module(const std::string& relative) const {
  for (const auto& module : modules)
    if (module.name == relative) return &module;
  return nullptr;
}

const std::vector<FamilyEntry>& model_families() {
  // The one list of supported families; a new family adds its file and one line here.
  static const std::vector<FamilyEntry> families = {llama_family(), opt_family(), gpt2_family()};
  return families;
}

const FamilyEntry* find_family(const std::string& model_type) {
  for (const auto& family : model_families()) {
    const auto& types = family.model_types;
    if (std::find(types.begin(), types.end(), model_type) != types.end()) return &family;
  }
  return nullptr;
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> types;
  for (const auto& family : model_families())
    types.insert(types.end(), family.model_types.begin(), family.model_types.end());
  std::sort(types.begin(), types.end());
  return types;
}

}  // namespace presso

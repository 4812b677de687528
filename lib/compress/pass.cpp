#include "lib/compress/pass.h"

#include "lib/common/errors.h"

namespace presso {

std::vector<PassSchema> registry_schemas(const PassRegistry& registry) {
  std::vector<PassSchema> schemas;
  for (const auto& entry : registry) schemas.push_back(entry.schema);
  return schemas;
}

const PassFactory& find_pass(const PassRegistry& registry, const std::string& name) {
  for (const auto& entry : registry) {
    if (entry.schema.name == name) return entry;
  }
  fail_internal("pass '{}' is not registered", name);
}

QuantScheme scheme_from_options(const PassOptions& options) {
  QuantScheme scheme;
  scheme.bits = static_cast<int>(options.get_int("bits"));
  scheme.group_size = static_cast<int>(options.get_int("group_size"));
  scheme.symmetric = options.get_bool("symmetric");
  return scheme;
}

void set_quantized(LinearState& state, QuantizedWeight quant) {
  state.linear->weight = dequantize(quant).to(state.linear->weight.device());
  state.quant = std::move(quant);
}

}  // namespace presso

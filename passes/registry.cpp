#include "passes/registry.h"

namespace presso {

const PassRegistry& pass_registry() {
  static const PassRegistry registry = {rtn_pass(), gptq_pass(), magnitude_pass(), lowrank_pass()};
  return registry;
}

}  // namespace presso

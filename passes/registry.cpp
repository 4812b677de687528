#include "passes/registry.h"

namespace presso {

const PassRegistry& pass_registry() {
  static const PassRegistry registry = {rtn_pass(),       awq_pass(),   gptq_pass(),
                                        magnitude_pass(), wanda_pass(), sparsegpt_pass(),
                                        lowrank_pass()};
  return registry;
}

}  // namespace presso

// passes/: one file per compression pass, each implementing lib/compress's Pass and exposing one
// factory function; the registry below lists them by name, in one place (no static registration
// a linker could drop). A pass reads its options, declares its statistics, calls the kernels of
// lib/quant and records results; it never reads files, parses YAML or prints.
#pragma once

#include "lib/compress/pass.h"

namespace presso {

// The factories of the passes, one per file.
PassFactory rtn_pass();        // passes/rtn.cpp
PassFactory gptq_pass();       // passes/gptq.cpp
PassFactory magnitude_pass();  // passes/magnitude.cpp
PassFactory wanda_pass();      // passes/wanda.cpp
PassFactory sparsegpt_pass();  // passes/sparsegpt.cpp
PassFactory lowrank_pass();    // passes/lowrank.cpp
PassFactory awq_pass();        // passes/awq.cpp

// Every pass presso has, in the order `presso list` shows them.
const PassRegistry& pass_registry();

}  // namespace presso

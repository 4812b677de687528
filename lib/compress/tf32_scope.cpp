#include "lib/compress/tf32_scope.h"

#include <ATen/Context.h>

namespace presso {

Tf32Scope::Tf32Scope(bool enable) : previous_(at::globalContext().allowTF32CuBLAS()) {
  at::globalContext().setAllowTF32CuBLAS(enable);
}

Tf32Scope::~Tf32Scope() { at::globalContext().setAllowTF32CuBLAS(previous_); }

}  // namespace presso

// What a compression job will store for one linear — its quantization scheme, sparsity structure
// and low-rank path — as the passes declare it before any work. The output formats are checked
// against these (formats.h) and the writers' configs are built from them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "lib/quant/scheme.h"
#include "lib/sparse/pattern.h"

namespace presso {

struct LinearPlan {
  std::string name;  // "model.layers.3.mlp.up_proj"
  int64_t out_features = 0;
  int64_t in_features = 0;
  std::optional<QuantScheme> scheme;        // stored quantized (the last quantizing pass decides)
  bool g_idx = false;                       // with a non-trivial g_idx (act-order, dynamic groups)
  std::optional<SparsityPattern> sparsity;  // pruned: N:M, or unstructured (n = 0)
  bool lowrank = false;                     // with a low-rank path, written as an adapter
};

}  // namespace presso

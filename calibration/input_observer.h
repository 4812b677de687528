// What a pass plugs into a run of the block to see the inputs of its linears: an InputObserver
// per linear. The common statistics (XᵀX, mean |x|, Σx², linear_statistics.h) are ready-made
// observers; a pass that needs something else writes a small one beside itself.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>

namespace presso {

class InputObserver {
 public:
  virtual ~InputObserver() = default;
  // input: what the linear reads in one batch of calibration windows, [B, T, in] fp32 on the
  // compute device. It is not kept by the caller; copy what must outlive the call.
  virtual void observe(const torch::Tensor& input) = 0;
};

// Observers by full linear name ("model.layers.3.mlp.up_proj"), for one run of a block; the
// pointers are not owned.
using ObserverMap = std::map<std::string, InputObserver*>;

}  // namespace presso

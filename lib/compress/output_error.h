// The relative output error ‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ of compressed linears, measured while the
// compressed block runs over the calibration inputs (X is what each linear receives in that run,
// i.e. from the already-compressed layers before it). Measured on the first `max_tokens` tokens
// only: two extra GEMMs per linear over every calibration token would cost more than the block
// run itself, and 16k tokens pin the ratio down to a few parts in a thousand.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>

#include "lib/model/block.h"

namespace presso {

class OutputErrorMeter {
 public:
  explicit OutputErrorMeter(int64_t max_tokens = 16384) : max_tokens_(max_tokens) {}

  // Tracks `linear_name`: `original` is its weight before compression [out, in] (any float
  // dtype: the checkpoint's, which holds it exactly), `compressed` the block's weight now (kept
  // by reference, not copied).
  void track(const std::string& linear_name, const torch::Tensor& original,
             const torch::Tensor& compressed);
  // Accumulates both norms for a tracked linear's input [..., in]; other linears are ignored.
  void hook(const std::string& linear_name, const torch::Tensor& input);
  LinearHook as_hook();  // refers to this meter, which must outlive it

  bool tracks(const std::string& linear_name) const;
  // sqrt(Σ‖XΔWᵀ‖² / Σ‖XWᵀ‖²); 0 when the reference output is all zeros and nothing changed.
  double relative_error(const std::string& linear_name) const;

 private:
  struct Entry {
    torch::Tensor original;    // [out, in]
    torch::Tensor compressed;  // [out, in] fp32
    double error_sq = 0.0;
    double reference_sq = 0.0;
    int64_t tokens = 0;
  };
  int64_t max_tokens_;
  std::map<std::string, Entry> entries_;
};

}  // namespace presso

// The relative output error ‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ of compressed linears, measured while the
// compressed block runs over the calibration inputs (X is what each linear receives in that run,
// i.e. from the already-compressed layers before it), on the first `max_tokens` tokens.
//
// With ΔW = W − Ŵ and G = XᵀX, ‖XΔWᵀ‖² = Σ (ΔW·G) ∘ ΔW: a linear is measured through G
// (2·tokens·in² flops, shared by the next linears reading the same input: k/v after q, up after
// gate, plus two fp64 quadratic forms, ≈ 8·out·in² at the end) when that costs less than two
// GEMMs over the tokens (4·tokens·in·out) — with many tokens and an input at most twice as wide
// as the output. The sums stay on the device until an error is asked for: no host
// synchronisation inside the block run.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "lib/model/block.h"

namespace presso {

class OutputErrorMeter {
 public:
  // `tokens`: how many tokens the run will feed each linear (the meter uses at most max_tokens).
  explicit OutputErrorMeter(int64_t tokens, int64_t max_tokens = 16384)
      : tokens_(std::min(tokens, max_tokens)), max_tokens_(max_tokens) {}

  // Tracks `linear_name`: `original` is its weight before compression [out, in] (any float
  // dtype: the checkpoint's, which holds it exactly), `compressed` the block's weight now (kept
  // by reference, not copied: the meter adds no weight-sized memory that outlives a batch).
  void track(const std::string& linear_name, const torch::Tensor& original,
             const torch::Tensor& compressed);
  // Accumulates the sums for a tracked linear's input [..., in]; other linears are ignored.
  void hook(const std::string& linear_name, const torch::Tensor& input);
  LinearHook as_hook();  // refers to this meter, which must outlive it

  bool tracks(const std::string& linear_name) const;
  // sqrt(Σ‖XΔWᵀ‖² / Σ‖XWᵀ‖²); 0 when the reference output is all zeros and nothing changed.
  double relative_error(const std::string& linear_name) const;

 private:
  struct Gram {
    torch::Tensor xtx;  // Σ xᵀx [in, in], fp32
    int64_t tokens = 0;
  };
  struct Entry {
    torch::Tensor original;       // W [out, in], as given
    torch::Tensor compressed;     // Ŵ [out, in]
    std::shared_ptr<Gram> gram;   // set when measured through XᵀX
    torch::Tensor error_sq;       // otherwise Σ‖XΔWᵀ‖² and Σ‖XWᵀ‖², fp64 scalars
    torch::Tensor reference_sq;
    int64_t tokens = 0;
    bool started = false;
  };
  // The rows of `input` [..., in] still below the token budget, after `seen` tokens.
  torch::Tensor rows_within_budget(const torch::Tensor& input, int64_t seen) const;

  // Whether XᵀX (already computed for this input when `shared`) is the cheaper way for [out, in].
  bool gram_is_cheaper(int64_t out, int64_t in, bool shared) const;

  int64_t tokens_;
  int64_t max_tokens_;
  std::map<std::string, Entry> entries_;
  // The latest input added to a Gram matrix, for the next linear that reads the same tensor.
  torch::Tensor last_input_;
  std::shared_ptr<Gram> last_gram_;
};

}  // namespace presso

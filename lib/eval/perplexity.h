// lib/eval: evaluation of models on text — perplexity with the protocol of DESIGN.md, and the
// `presso eval` job built on it. May include lib/common, lib/model, lib/tokenizer.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include <torch/types.h>

#include "lib/model/model.h"

namespace presso {

struct PerplexityOptions {
  int64_t seqlen = 512;
  std::optional<int64_t> max_windows;  // first K windows only
  int64_t batch_size = 0;              // windows per forward; 0 = auto_batch_size()
  torch::Device device = torch::kCPU;
  std::function<void(int64_t windows_done)> on_batch;  // progress callback
  // Sees every batch's logits [B, T, V] (fp32, on device) with its input ids [B, T] and the
  // index of its first window, before on_batch; the KL divergence reads the windows here.
  std::function<void(const torch::Tensor& logits, const torch::Tensor& ids, int64_t first_window)>
      on_logits;
};

struct PerplexityResult {
  double ppl = 0;
  double nll_sum = 0;         // natural log, summed over scored tokens
  int64_t tokens_scored = 0;  // windows * (seqlen - 1)
  int64_t windows = 0;
  int64_t batch_size = 0;     // windows per forward, as used
  double seconds = 0;         // forward + loss time, tokenization excluded
  double tokens_per_second = 0;  // tokens run through the model (windows * seqlen) per second
};

// Windows per forward when not given: up to 8 (on the CI machine the forward reaches half the
// GEMM rate from 8 windows of 512, a quarter at 2), but at most 2^27 floats (512 MiB) of logits.
int64_t auto_batch_size(int64_t seqlen, int64_t vocab_size);

// model.forward(ids): logits [B, T, V] for the windows ids [B, T] starting at window
// `first_window`. UserError when a logit is NaN or infinite, naming the model, the windows and
// the first stage of the forward whose output is not finite (Model::first_non_finite_stage):
// no number measured on such a model means anything.
torch::Tensor finite_logits(const Model& model, const torch::Tensor& ids, int64_t first_window);

// Number of windows the protocol uses for `n_tokens` tokens (before max_windows).
int64_t count_windows(int64_t n_tokens, int64_t seqlen);

// Non-overlapping windows of `seqlen` tokens from the start, no BOS added; each window scores
// tokens 1..seqlen-1 given the ones before; ppl = exp(sum NLL / count). UserError for a
// non-finite logit at a scored position (a batch's NLL sum is checked; the error names the stage
// as finite_logits does) or a perplexity that overflows.
PerplexityResult compute_perplexity(const Model& model, const std::vector<int32_t>& tokens,
                                    const PerplexityOptions& options);

}  // namespace presso

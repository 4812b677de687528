// KL divergence of a model's next-token distributions from a reference model's, as llama.cpp's
// `llama-perplexity --kl-divergence` reports it, over a compact form of the reference.
//
// What presso computes (the same for a resident reference and for a saved log-prob file): at
// each scored position the reference distribution P is kept as its k most probable tokens S and
// one bucket "rest" holding the mass of every other token; the evaluated model's Q is folded into
// the same k + 1 buckets (Q_rest = 1 − Σ_{i∈S} Q_i), and
//   KL = Σ_{i∈S} P_i (ln P_i − ln Q_i) + P_rest (ln P_rest − ln Q_rest).
// Merging outcomes never increases a KL divergence (log-sum inequality), so this is at most the
// full-vocabulary KL; the gap is the divergence inside the rest bucket, which vanishes as its mass
// does. README and tests/e2e_kl_divergence.cpp state the gap measured on the shipped model.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace presso {

// Reference rows, one per scored position (window w, position t < seqlen − 1 at row
// w·(seqlen − 1) + t), as saved in a log-prob file.
struct ReferenceLogProbs {
  torch::Tensor tokens;  // [N, k] int32, the k most probable next tokens, most probable first
  torch::Tensor logp;    // [N, k] fp32, their ln P
  torch::Tensor rest;    // [N] fp32, ln of the mass outside the k tokens
  torch::Tensor nll;     // [N] fp32, −ln P of the token that actually follows

  int64_t rows() const { return tokens.size(0); }
  int64_t top_k() const { return tokens.size(1); }
  ReferenceLogProbs narrow(int64_t first_row, int64_t count) const;
  static ReferenceLogProbs concat(const std::vector<ReferenceLogProbs>& parts);
};

// The rows of one batch: logits [B, T, V] and ids [B, T] -> B·(T − 1) rows on the CPU.
ReferenceLogProbs reference_logprobs(const torch::Tensor& logits, const torch::Tensor& ids,
                                     int64_t top_k);

// Per position of a batch: logits [B, T, V] and ids [B, T] of the evaluated model against the
// reference's B·(T − 1) rows; each result is [B·(T − 1)] fp64 on the CPU.
struct PositionDivergence {
  torch::Tensor kl;         // the bucketed KL above
  torch::Tensor top1_same;  // 1 where the model's most probable token is the reference's
  torch::Tensor nll_delta;  // −ln Q(next) − (−ln P(next))
};
PositionDivergence position_divergence(const ReferenceLogProbs& reference,
                                       const torch::Tensor& logits, const torch::Tensor& ids);

// The statistics llama.cpp prints, over all positions.
struct KlSummary {
  int64_t positions = 0;
  double mean_kl = 0, mean_kl_uncertainty = 0;  // uncertainty: standard error of the mean
  double median_kl = 0, p90_kl = 0, p95_kl = 0, p99_kl = 0, max_kl = 0;
  double top1_agreement = 0, top1_agreement_uncertainty = 0;  // fraction
  double ln_ppl_ratio = 0, ln_ppl_ratio_uncertainty = 0;      // ln(ppl(Q) / ppl(P))
};

// Collects position_divergence() batch by batch and summarises them.
class KlAccumulator {
 public:
  void add(const PositionDivergence& batch);
  KlSummary summary() const;

 private:
  std::vector<torch::Tensor> kl_, top1_, nll_delta_;
};

}  // namespace presso

#include "lib/eval/kl_divergence.h"

#include <cmath>
#include <limits>

#include "lib/common/errors.h"

namespace presso {

namespace {

// logits [B, T, V] -> the scored positions' rows [B·(T − 1), V], positions 0..T−2.
torch::Tensor scored_rows(const torch::Tensor& logits) {
  const int64_t vocab = logits.size(2);
  return logits.narrow(1, 0, logits.size(1) - 1).reshape({-1, vocab});
}

// ids [B, T] -> the token following each scored position, [B·(T − 1), 1] int64.
torch::Tensor next_tokens(const torch::Tensor& ids) {
  return ids.narrow(1, 1, ids.size(1) - 1).reshape({-1, 1}).to(torch::kInt64);
}

// ln of the probability mass of every token but `excluded` [N, k]: logsumexp over the row with
// those entries at −inf, minus the row's logsumexp `lse` [N]. Summing the excluded probabilities
// and subtracting from 1 would lose a small rest to fp32 rounding.
torch::Tensor log_mass_outside(const torch::Tensor& rows, const torch::Tensor& excluded,
                               const torch::Tensor& lse) {
  auto masked = rows.clone();
  masked.scatter_(1, excluded, -std::numeric_limits<float>::infinity());
  return masked.logsumexp(1) - lse;
}

double mean_of(const torch::Tensor& values) { return values.mean().item<double>(); }

// Standard error of the mean, as llama.cpp computes it: sqrt(variance / (n − 1)).
double standard_error(const torch::Tensor& values) {
  const int64_t n = values.numel();
  if (n < 2) return 0;
  const double mean = mean_of(values);
  const double variance = (values * values).mean().item<double>() - mean * mean;
  return std::sqrt(std::max(variance, 0.0) / static_cast<double>(n - 1));
}

// Linear interpolation between the sorted values around fraction `q` of the way.
double quantile_of_sorted(const torch::Tensor& sorted, double q) {
  const int64_t n = sorted.numel();
  const double position = q * static_cast<double>(n - 1);
  const auto below = static_cast<int64_t>(std::floor(position));
  const int64_t above = std::min(below + 1, n - 1);
  const double low = sorted[below].item<double>();
  const double high = sorted[above].item<double>();
  return low + (high - low) * (position - static_cast<double>(below));
}

}  // namespace

ReferenceLogProbs ReferenceLogProbs::narrow(int64_t first_row, int64_t count) const {
  return {tokens.narrow(0, first_row, count), logp.narrow(0, first_row, count),
          rest.narrow(0, first_row, count), nll.narrow(0, first_row, count)};
}

ReferenceLogProbs ReferenceLogProbs::concat(const std::vector<ReferenceLogProbs>& parts) {
  std::vector<torch::Tensor> tokens, logp, rest, nll;
  for (const auto& part : parts) {
    tokens.push_back(part.tokens);
    logp.push_back(part.logp);
    rest.push_back(part.rest);
    nll.push_back(part.nll);
  }
  return {torch::cat(tokens), torch::cat(logp), torch::cat(rest), torch::cat(nll)};
}

ReferenceLogProbs reference_logprobs(const torch::Tensor& logits, const torch::Tensor& ids,
                                     int64_t top_k) {
  const auto rows = scored_rows(logits);  // [N, V]
  if (top_k < 1 || top_k >= rows.size(1))
    fail_user("--top-k must be between 1 and the vocabulary size − 1 ({}), got {}",
              rows.size(1) - 1, top_k);
  const auto lse = rows.logsumexp(1);  // [N]
  const auto top = rows.topk(top_k, 1, /*largest=*/true, /*sorted=*/true);
  const auto top_tokens = std::get<1>(top);                   // [N, k] int64
  const auto top_logp = std::get<0>(top) - lse.unsqueeze(1);  // [N, k]
  const auto next = next_tokens(ids);
  const auto nll = lse - rows.gather(1, next).squeeze(1);
  return {top_tokens.to(torch::kInt32).cpu(), top_logp.to(torch::kFloat32).cpu(),
          log_mass_outside(rows, top_tokens, lse).to(torch::kFloat32).cpu(),
          nll.to(torch::kFloat32).cpu()};
}

PositionDivergence position_divergence(const ReferenceLogProbs& reference,
                                       const torch::Tensor& logits, const torch::Tensor& ids) {
  const auto rows = scored_rows(logits);  // [N, V]
  if (rows.size(0) != reference.rows())
    fail_internal("KL: the batch has {} scored positions but the reference {} rows", rows.size(0),
                  reference.rows());
  const auto device = rows.device();
  const auto ref_tokens = reference.tokens.to(device).to(torch::kInt64);  // [N, k]
  const auto lse = rows.logsumexp(1);
  const auto q_top = (rows.gather(1, ref_tokens) - lse.unsqueeze(1)).to(torch::kFloat64).cpu();
  const auto q_rest = log_mass_outside(rows, ref_tokens, lse).to(torch::kFloat64).cpu();
  const auto q_nll = (lse - rows.gather(1, next_tokens(ids)).squeeze(1)).to(torch::kFloat64).cpu();
  const auto q_argmax = rows.argmax(1).cpu();

  const auto p_top = reference.logp.to(torch::kFloat64);
  const auto p_rest = reference.rest.to(torch::kFloat64);
  const auto top_terms = (p_top.exp() * (p_top - q_top)).sum(1);
  // A rest of zero mass contributes nothing (0 · ln 0 = 0), not 0 · (−inf) = NaN.
  const auto rest_terms =
      torch::where(p_rest.exp() > 0, p_rest.exp() * (p_rest - q_rest), torch::zeros_like(p_rest));
  PositionDivergence out;
  out.kl = top_terms + rest_terms;
  out.top1_same = (q_argmax == reference.tokens.select(1, 0).to(torch::kInt64)).to(torch::kFloat64);
  out.nll_delta = q_nll - reference.nll.to(torch::kFloat64);
  return out;
}

void KlAccumulator::add(const PositionDivergence& batch) {
  kl_.push_back(batch.kl);
  top1_.push_back(batch.top1_same);
  nll_delta_.push_back(batch.nll_delta);
}

KlSummary KlAccumulator::summary() const {
  if (kl_.empty()) fail_internal("KL: no positions were scored");
  const auto kl = torch::cat(kl_);
  const auto top1 = torch::cat(top1_);
  const auto nll_delta = torch::cat(nll_delta_);
  const auto sorted = std::get<0>(kl.sort());
  KlSummary s;
  s.positions = kl.numel();
  s.mean_kl = mean_of(kl);
  s.mean_kl_uncertainty = standard_error(kl);
  s.median_kl = quantile_of_sorted(sorted, 0.5);
  s.p90_kl = quantile_of_sorted(sorted, 0.90);
  s.p95_kl = quantile_of_sorted(sorted, 0.95);
  s.p99_kl = quantile_of_sorted(sorted, 0.99);
  s.max_kl = sorted[-1].item<double>();
  s.top1_agreement = mean_of(top1);
  s.top1_agreement_uncertainty = standard_error(top1);
  s.ln_ppl_ratio = mean_of(nll_delta);
  s.ln_ppl_ratio_uncertainty = standard_error(nll_delta);
  return s;
}

}  // namespace presso

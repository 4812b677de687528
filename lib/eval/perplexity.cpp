#include "lib/eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>

#include "lib/common/errors.h"
#include "lib/quant/tensor_checks.h"

namespace presso {
namespace {

// UserError naming the first stage of the forward of `ids` whose output is not finite.
[[noreturn]] void fail_not_finite(const Model& model, const torch::Tensor& ids,
                                   int64_t first_window) {
  const std::optional<std::string> stage = model.first_non_finite_stage(ids);
  fail_user(
      "{}: the model's output is not finite (NaN or infinity) on windows {}..{}: the first layer "
      "whose output is not finite is {}; its weights (or, in a quantized checkpoint, its scales) "
      "or config.json are broken",
      model.dir(), first_window, first_window + ids.size(0) - 1,
      stage.value_or("lm_head (logits)"));
}

}  // namespace

int64_t auto_batch_size(int64_t seqlen, int64_t vocab_size) {
  constexpr int64_t kMaxLogits = int64_t{1} << 27;
  return std::clamp<int64_t>(kMaxLogits / std::max<int64_t>(1, seqlen * vocab_size), 1, 8);
}

torch::Tensor finite_logits(const Model& model, const torch::Tensor& ids, int64_t first_window) {
  torch::Tensor logits = model.forward(ids);
  // One sum per batch; the stage-by-stage rerun only for a batch that fails it.
  if (!all_finite(logits)) fail_not_finite(model, ids, first_window);
  return logits;
}

int64_t count_windows(int64_t n_tokens, int64_t seqlen) { return n_tokens / seqlen; }

PerplexityResult compute_perplexity(const Model& model, const std::vector<int32_t>& tokens,
                                    const PerplexityOptions& options) {
  if (options.seqlen < 2) fail_user("--seqlen must be at least 2, got {}", options.seqlen);
  if (options.batch_size < 0) fail_user("--batch-size must be 0 (auto) or positive, got {}",
                                        options.batch_size);
  const int64_t batch_size = options.batch_size > 0
                                 ? options.batch_size
                                 : auto_batch_size(options.seqlen, model.config().vocab_size);
  int64_t windows = count_windows(static_cast<int64_t>(tokens.size()), options.seqlen);
  if (windows == 0)
    fail_user("the text has {} tokens, fewer than one window of --seqlen {}", tokens.size(),
              options.seqlen);
  if (options.max_windows) windows = std::min(windows, *options.max_windows);

  torch::NoGradGuard no_grad;
  // All scored windows as one [windows, seqlen] int64 tensor; batches are views of it.
  const auto all_ids = torch::from_blob(const_cast<int32_t*>(tokens.data()),
                                        {windows * options.seqlen}, torch::kInt32)
                           .to(torch::kInt64)
                           .view({windows, options.seqlen});
  const auto start = std::chrono::steady_clock::now();
  double nll_sum = 0;
  for (int64_t first = 0; first < windows; first += batch_size) {
    const int64_t count = std::min(batch_size, windows - first);
    const auto ids = all_ids.narrow(0, first, count).to(options.device);
    const auto logits = model.forward(ids);  // [B, T, V] fp32
    // Position t predicts token t+1: score tokens 1..T-1. NLL = logsumexp(z) - z[target], which
    // never materialises the [B, T, V] log-softmax.
    const auto scored = logits.narrow(1, 0, options.seqlen - 1);
    const auto targets = ids.narrow(1, 1, options.seqlen - 1).unsqueeze(-1);
    const auto nll = scored.logsumexp(-1) - scored.gather(-1, targets).squeeze(-1);
    // A NaN or infinite logit of a scored position reaches its NLL, so the batch's sum is the
    // check: no pass over the logits; the stage-by-stage rerun only for a batch that fails it.
    const double batch_nll = nll.to(torch::kFloat64).sum().item<double>();
    if (!std::isfinite(batch_nll)) fail_not_finite(model, ids, first);
    nll_sum += batch_nll;
    if (options.on_logits) options.on_logits(logits, ids, first);
    if (options.on_batch) options.on_batch(first + count);
  }
  PerplexityResult result;
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.windows = windows;
  result.batch_size = batch_size;
  result.tokens_scored = windows * (options.seqlen - 1);
  result.nll_sum = nll_sum;
  result.ppl = std::exp(nll_sum / static_cast<double>(result.tokens_scored));
  if (!std::isfinite(result.ppl)) {
    fail_user(
        "{}: the perplexity overflows (mean NLL {} nats per token): the model's logits are "
        "finite but degenerate",
        model.dir(), nll_sum / static_cast<double>(result.tokens_scored));
  }
  result.tokens_per_second =
      static_cast<double>(windows * options.seqlen) / std::max(result.seconds, 1e-9);
  return result;
}

}  // namespace presso

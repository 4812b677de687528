#include "lib/compress/output_error.h"

#include <algorithm>
#include <cmath>

#include "lib/common/errors.h"

namespace presso {

void OutputErrorMeter::track(const std::string& linear_name, const torch::Tensor& original,
                             const torch::Tensor& compressed) {
  Entry entry;
  entry.original = original.to(compressed.device());
  entry.compressed = compressed;
  entries_[linear_name] = std::move(entry);
}

bool OutputErrorMeter::gram_is_cheaper(int64_t out, int64_t in, bool shared) const {
  // In flops, counting an fp64 flop as two fp32 ones.
  const double t = static_cast<double>(tokens_), o = static_cast<double>(out),
               i = static_cast<double>(in);
  const double gram = (shared ? 0.0 : 2.0 * t * i * i) + 8.0 * o * i * i;
  return gram < 4.0 * t * i * o;
}

torch::Tensor OutputErrorMeter::rows_within_budget(const torch::Tensor& input,
                                                   int64_t seen) const {
  const torch::Tensor x = input.reshape({-1, input.size(-1)});
  return x.slice(0, 0, std::min(x.size(0), max_tokens_ - seen)).to(torch::kFloat32);
}

void OutputErrorMeter::hook(const std::string& linear_name, const torch::Tensor& input) {
  auto it = entries_.find(linear_name);
  if (it == entries_.end()) return;
  Entry& entry = it->second;
  const bool shares_last_input = last_gram_ && last_input_.is_same(input);
  if (!entry.started) {
    entry.started = true;
    const int64_t out = entry.original.size(0), in = entry.original.size(1);
    if (gram_is_cheaper(out, in, shares_last_input)) {
      entry.gram = shares_last_input ? last_gram_ : std::make_shared<Gram>();
    }
  }
  if (entry.gram) {
    // Linears reading the same tensor in a row hold one Gram matrix; it grows once per input.
    if (shares_last_input && entry.gram == last_gram_) return;
    Gram& gram = *entry.gram;
    if (gram.tokens >= max_tokens_) return;
    const torch::Tensor x = rows_within_budget(input, gram.tokens);
    gram.tokens += x.size(0);
    const torch::Tensor xtx = torch::mm(x.t(), x);
    gram.xtx = gram.xtx.defined() ? gram.xtx.add_(xtx) : xtx;
    last_input_ = input;
    last_gram_ = entry.gram;
    return;
  }
  if (entry.tokens >= max_tokens_) return;
  const torch::Tensor x = rows_within_budget(input, entry.tokens);
  entry.tokens += x.size(0);
  const torch::Tensor w = entry.original.to(torch::kFloat32);
  const torch::Tensor reference = torch::mm(x, w.t());
  const torch::Tensor error_sq =
      (reference - torch::mm(x, entry.compressed.to(torch::kFloat32).t()))
          .square()
          .sum(torch::kFloat64);
  const torch::Tensor reference_sq = reference.square().sum(torch::kFloat64);
  entry.error_sq = entry.error_sq.defined() ? entry.error_sq + error_sq : error_sq;
  entry.reference_sq =
      entry.reference_sq.defined() ? entry.reference_sq + reference_sq : reference_sq;
}

LinearHook OutputErrorMeter::as_hook() {
  return [this](const std::string& name, const torch::Tensor& input) { hook(name, input); };
}

bool OutputErrorMeter::tracks(const std::string& linear_name) const {
  return entries_.count(linear_name) > 0;
}

double OutputErrorMeter::relative_error(const std::string& linear_name) const {
  auto it = entries_.find(linear_name);
  if (it == entries_.end()) fail_internal("output error of '{}' was not tracked", linear_name);
  const Entry& entry = it->second;
  double error_sq = 0.0, reference_sq = 0.0;
  if (entry.gram && entry.gram->xtx.defined()) {
    // Σ‖xAᵀ‖² over the tokens = Σ (A·XᵀX) ∘ A, in fp64 so the trace of a small ΔW stays exact,
    // a few rows at a time so that no weight-sized fp64 copy is made.
    const torch::Tensor g = entry.gram->xtx.to(torch::kFloat64);
    const int64_t rows = entry.original.size(0);
    const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 21) / g.size(0));
    for (int64_t start = 0; start < rows; start += chunk) {
      const int64_t end = std::min(rows, start + chunk);
      const torch::Tensor w = entry.original.slice(0, start, end).to(torch::kFloat64);
      const torch::Tensor delta = w - entry.compressed.slice(0, start, end).to(torch::kFloat64);
      error_sq += (torch::mm(delta, g) * delta).sum().item<double>();
      reference_sq += (torch::mm(w, g) * w).sum().item<double>();
    }
    error_sq = std::max(0.0, error_sq);
    reference_sq = std::max(0.0, reference_sq);
  } else if (entry.error_sq.defined()) {
    error_sq = entry.error_sq.item<double>();
    reference_sq = entry.reference_sq.item<double>();
  }
  if (reference_sq == 0.0) return error_sq == 0.0 ? 0.0 : INFINITY;
  return std::sqrt(error_sq / reference_sq);
}

}  // namespace presso

#include "lib/compress/output_error.h"

#include <algorithm>
#include <cmath>

#include "lib/common/errors.h"

namespace presso {

void OutputErrorMeter::track(const std::string& linear_name, const torch::Tensor& original,
                             const torch::Tensor& compressed) {
  entries_[linear_name] = Entry{original, compressed};
}

void OutputErrorMeter::hook(const std::string& linear_name, const torch::Tensor& input) {
  auto it = entries_.find(linear_name);
  if (it == entries_.end()) return;
  Entry& entry = it->second;
  if (entry.tokens >= max_tokens_) return;
  torch::Tensor x = input.reshape({-1, input.size(-1)});
  x = x.slice(0, 0, std::min(x.size(0), max_tokens_ - entry.tokens));
  entry.tokens += x.size(0);
  // Two GEMMs in fp32; the sums go to double on the host once per batch.
  const torch::Tensor reference = torch::mm(x, entry.original.to(x.scalar_type()).t());
  entry.error_sq += (reference - torch::mm(x, entry.compressed.t())).square().sum().item<double>();
  entry.reference_sq += reference.square().sum().item<double>();
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
  if (entry.reference_sq == 0.0) return entry.error_sq == 0.0 ? 0.0 : INFINITY;
  return std::sqrt(entry.error_sq / entry.reference_sq);
}

}  // namespace presso

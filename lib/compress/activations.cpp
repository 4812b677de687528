#include "lib/compress/activations.h"

#include <algorithm>

#include "lib/common/errors.h"
#include "lib/common/interrupt.h"

namespace presso {
namespace {

// Windows per batch so that one batch's largest intermediates (the MLP's [B, T, intermediate]
// and the attention scores [B, heads, T, T], fp32, a few alive at once) stay near 256 MiB.
int64_t auto_batch_size(const ModelConfig& config, int64_t windows, int64_t seqlen) {
  const int64_t per_window = 4 * seqlen *
                             (3 * std::max(config.intermediate_size, 3 * config.hidden_size) +
                              2 * config.num_heads * seqlen);
  const int64_t budget = int64_t{256} << 20;
  return std::clamp<int64_t>(budget / std::max<int64_t>(per_window, 1), 1, windows);
}

// Thrown by observe()'s hook once the last needed input was seen, to leave the block's forward.
struct NeededInputsSeen {};

}  // namespace

BlockActivations::BlockActivations(const Model& model, const torch::Tensor& windows,
                                   torch::ScalarType dtype, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const int64_t n = windows.size(0), seqlen = windows.size(1);
  batch_size_ =
      batch_size > 0 ? std::min(batch_size, n) : auto_batch_size(model.config(), n, seqlen);
  hidden_ = torch::empty({n, seqlen, model.config().hidden_size},
                         torch::TensorOptions().dtype(dtype).device(model.device()));
  for (int64_t start = 0; start < n; start += batch_size_) {
    const int64_t end = std::min(n, start + batch_size_);
    hidden_.slice(0, start, end)
        .copy_(model.embed(windows.slice(0, start, end).to(model.device())));
    check_interrupted();
  }
}

torch::Tensor BlockActivations::batch(int64_t index) const {
  if (index < 0 || index >= batches()) {
    fail_internal("calibration batch {} of {}", index, batches());
  }
  const int64_t start = index * batch_size_;
  return hidden_.slice(0, start, std::min(windows(), start + batch_size_)).to(torch::kFloat32);
}

void BlockActivations::run(const Model& model, const DecoderBlock& block, const LinearHook* hook,
                           bool advance) {
  torch::NoGradGuard no_grad;
  for (int64_t start = 0; start < windows(); start += batch_size_) {
    const int64_t end = std::min(windows(), start + batch_size_);
    torch::Tensor slot = hidden_.slice(0, start, end);
    torch::Tensor out = model.run_block(block, slot.to(torch::kFloat32), hook);
    if (advance) slot.copy_(out);
    check_interrupted();
  }
}

void BlockActivations::observe(const Model& model, const DecoderBlock& block,
                               const LinearHook& hook, const std::vector<std::string>& needed) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> pending;
  const LinearHook until_seen = [&](const std::string& name, const torch::Tensor& input) {
    hook(name, input);
    pending.erase(std::remove(pending.begin(), pending.end(), name), pending.end());
    if (pending.empty()) throw NeededInputsSeen{};
  };
  for (int64_t start = 0; start < windows(); start += batch_size_) {
    const int64_t end = std::min(windows(), start + batch_size_);
    pending = needed;
    try {
      model.run_block(block, hidden_.slice(0, start, end).to(torch::kFloat32), &until_seen);
    } catch (const NeededInputsSeen&) {
    }
    if (!pending.empty()) {
      fail_internal("block {}: the forward never reached the input of '{}'", block.index,
                    pending.front());
    }
    check_interrupted();
  }
}

}  // namespace presso

#include "lib/compress/activations.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "lib/common/errors.h"
#include "lib/common/interrupt.h"
#include "lib/common/system_memory.h"
#include "lib/quant/tensor_checks.h"

namespace presso {
namespace {

struct CalibrationBytes {
  double windows = 0;  // int64 token windows, on the host
  double hidden = 0;   // hidden states, on the model's device
};

// In double: absurd counts would overflow int64.
CalibrationBytes calibration_bytes(const ModelConfig& config, int64_t windows, int64_t seqlen,
                                   torch::ScalarType dtype) {
  const double tokens = static_cast<double>(windows) * static_cast<double>(seqlen);
  return {tokens * sizeof(int64_t),
          tokens * static_cast<double>(config.hidden_size) * c10::elementSize(dtype)};
}

std::string calibration_shape(const ModelConfig& config, int64_t windows, int64_t seqlen,
                              torch::ScalarType dtype) {
  const CalibrationBytes bytes = calibration_bytes(config, windows, seqlen, dtype);
  return fmt::format(
      "--nsamples {} x --seqlen {} tokens take {} of token windows and {} of {} hidden states "
      "({} wide)",
      windows, seqlen, format_gib(bytes.windows), format_gib(bytes.hidden),
      dtype == torch::kBFloat16 ? "bfloat16" : "float32", config.hidden_size);
}

constexpr const char* kCalibrationAdvice =
    "lower --nsamples or --seqlen, or halve the hidden states with --bf16-activations";

// Thrown by observe()'s hook once the last needed input was seen, to leave the block's forward.
struct NeededInputsSeen {};

// UserError unless `values` (calibration activations at `where`) are all finite: a NaN or an
// infinity would spread through every later block, statistic and pass. One reduction per batch.
void require_finite(const torch::Tensor& values, const std::string& where) {
  if (all_finite(values)) return;  // one sum, not isfinite's temporaries (11 % of a GPTQ run)
  fail_user(
      "{} is not finite (NaN or infinity) on the calibration windows; the checkpoint's weights "
      "or config.json are broken there, or the compression of an earlier block diverged",
      where);
}

}  // namespace

double window_intermediate_bytes(const ModelConfig& config, int64_t seqlen) {
  return 4.0 * static_cast<double>(seqlen) *
         static_cast<double>(3 * std::max(config.intermediate_size, 3 * config.hidden_size) +
                             2 * config.num_heads * seqlen);
}

int64_t calibration_batch_size(const ModelConfig& config, int64_t windows, int64_t seqlen,
                               int64_t requested) {
  if (requested > 0) return std::min(requested, windows);
  const double budget = static_cast<double>(int64_t{256} << 20);
  const double fitting =
      std::floor(budget / std::max(window_intermediate_bytes(config, seqlen), 1.0));
  return std::clamp<int64_t>(static_cast<int64_t>(std::min(fitting, 1e12)), 1, windows);
}

void check_calibration_fits(const ModelConfig& config, int64_t windows, int64_t seqlen,
                            torch::ScalarType dtype, const torch::Device& device) {
  const std::optional<AvailableMemory> available = available_memory();
  if (!available) return;
  const CalibrationBytes bytes = calibration_bytes(config, windows, seqlen, dtype);
  const double host = bytes.windows + (device.is_cpu() ? bytes.hidden : 0.0);
  if (host <= static_cast<double>(available->bytes)) return;
  fail_user("{}, more than the {} of memory available ({}); {}",
            calibration_shape(config, windows, seqlen, dtype),
            format_gib(static_cast<double>(available->bytes)), available->source,
            kCalibrationAdvice);
}

BlockActivations::BlockActivations(const Model& model, const torch::Tensor& windows,
                                   torch::ScalarType dtype, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const int64_t n = windows.size(0), seqlen = windows.size(1);
  batch_size_ = calibration_batch_size(model.config(), n, seqlen, batch_size);
  try {
    hidden_ = torch::empty({n, seqlen, model.config().hidden_size},
                           torch::TensorOptions().dtype(dtype).device(model.device()));
  } catch (const c10::Error& e) {  // out of memory, on a device check_calibration_fits cannot see
    fail_user("{}, more than {} could allocate ({}); {}",
              calibration_shape(model.config(), n, seqlen, dtype), model.device().str(),
              e.what_without_backtrace(), kCalibrationAdvice);
  }
  for (int64_t start = 0; start < n; start += batch_size_) {
    const int64_t end = std::min(n, start + batch_size_);
    const torch::Tensor embedded = model.embed(windows.slice(0, start, end).to(model.device()));
    require_finite(embedded, "the output of the embeddings (" +
                                 model.family().tensor(model.family().embed_tokens) + ")");
    hidden_.slice(0, start, end).copy_(embedded);
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
    if (advance) {
      require_finite(out, "the output of " + model.family().block_label(block.index));
      slot.copy_(out);
    }
    check_interrupted();
  }
}

void BlockActivations::observe(const Model& model, const DecoderBlock& block,
                               const LinearHook& hook, const std::vector<std::string>& needed) {
  observe_batches(model, block, hook, needed,
                  [&](int64_t index, int64_t start, int64_t end, const LinearHook& until_seen) {
                    (void)index;
                    model.run_block(block, hidden_.slice(0, start, end).to(torch::kFloat32),
                                    &until_seen);
                  });
}

void BlockActivations::observe_module(const Model& model, const DecoderBlock& block,
                                      const std::string& module,
                                      const std::vector<torch::Tensor>& inputs,
                                      const LinearHook& hook,
                                      const std::vector<std::string>& needed) {
  if (static_cast<int64_t>(inputs.size()) != batches()) {
    fail_internal("observe_module: {} inputs for {} batches", inputs.size(), batches());
  }
  observe_batches(model, block, hook, needed,
                  [&](int64_t index, int64_t, int64_t, const LinearHook& until_seen) {
                    model.run_module(block, module, inputs[index], &until_seen);
                  });
}

void BlockActivations::observe_batches(
    const Model& model, const DecoderBlock& block, const LinearHook& hook,
    const std::vector<std::string>& needed,
    const std::function<void(int64_t, int64_t, int64_t, const LinearHook&)>& forward) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> pending;
  const LinearHook until_seen = [&](const std::string& name, const torch::Tensor& input) {
    require_finite(input, fmt::format("in {}, the input of '{}'",
                                      model.family().block_label(block.index), name));
    hook(name, input);
    pending.erase(std::remove(pending.begin(), pending.end(), name), pending.end());
    if (pending.empty()) throw NeededInputsSeen{};
  };
  for (int64_t index = 0; index < batches(); ++index) {
    const int64_t start = index * batch_size_;
    const int64_t end = std::min(windows(), start + batch_size_);
    pending = needed;
    try {
      forward(index, start, end, until_seen);
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

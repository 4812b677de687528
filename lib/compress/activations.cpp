#include "lib/compress/activations.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>

#include "lib/common/errors.h"
#include "lib/common/interrupt.h"
#include "lib/common/system_memory.h"
#include "lib/compress/tf32_scope.h"

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

// Whether calibration activations stay finite: a NaN or an infinity would spread through every
// later block, statistic and pass. add() queues one reduction per tensor on its device (a sum:
// NaN and ±inf carry through it, and finite activations are ~1e30 short of overflowing it);
// verify() reads them all with one synchronisation and names the first place that failed.
class FiniteWatch {
 public:
  void add(const torch::Tensor& values, std::function<std::string()> where) {
    flags_.push_back(torch::isfinite(values.sum()));
    where_.push_back(std::move(where));
  }
  void verify() {
    if (flags_.empty()) return;
    const torch::Tensor flags = torch::stack(flags_).cpu();
    flags_.clear();
    const bool* finite = flags.data_ptr<bool>();
    for (int64_t i = 0; i < flags.numel(); ++i) {
      if (finite[i]) continue;
      fail_user(
          "{} is not finite (NaN or infinity) on the calibration windows; the checkpoint's "
          "weights or config.json are broken there, or the compression of an earlier block "
          "diverged",
          where_[static_cast<size_t>(i)]());
    }
    where_.clear();
  }

 private:
  std::vector<torch::Tensor> flags_;
  std::vector<std::function<std::string()>> where_;
};

}  // namespace

double window_intermediate_bytes(const ModelConfig& config, int64_t seqlen) {
  return 4.0 * static_cast<double>(seqlen) *
         static_cast<double>(3 * std::max(config.intermediate_size, 3 * config.hidden_size) +
                             2 * config.num_heads * seqlen);
}

torch::ScalarType kept_input_dtype_for(const torch::Device& device, bool tf32) {
  return device.is_cuda() && tf32 ? torch::kFloat16 : torch::kFloat32;
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
                                   torch::ScalarType dtype, int64_t batch_size, bool tf32)
    : tf32_(tf32) {
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
  FiniteWatch watch;
  for (int64_t start = 0; start < n; start += batch_size_) {
    const int64_t end = std::min(n, start + batch_size_);
    const torch::Tensor embedded = model.embed(windows.slice(0, start, end).to(model.device()));
    watch.add(embedded, [&model] {
      return "the output of the embeddings (" + model.family().tensor(model.family().embed_tokens) +
             ")";
    });
    hidden_.slice(0, start, end).copy_(embedded);
    check_interrupted();
  }
  watch.verify();
}

torch::ScalarType BlockActivations::kept_input_dtype() const {
  return kept_input_dtype_for(hidden_.device(), tf32_);
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
  const Tf32Scope precision(tf32_);
  FiniteWatch watch;
  for (int64_t start = 0; start < windows(); start += batch_size_) {
    const int64_t end = std::min(windows(), start + batch_size_);
    torch::Tensor slot = hidden_.slice(0, start, end);
    torch::Tensor out = model.run_block(block, slot.to(torch::kFloat32), hook);
    if (advance) {
      watch.add(out, [&] { return "the output of " + model.family().block_label(block.index); });
      slot.copy_(out);
    }
    check_interrupted();
  }
  watch.verify();
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
                    model.run_module(block, module, inputs[index].to(torch::kFloat32), &until_seen);
                  });
}

void BlockActivations::observe_batches(
    const Model& model, const DecoderBlock& block, const LinearHook& hook,
    const std::vector<std::string>& needed,
    const std::function<void(int64_t, int64_t, int64_t, const LinearHook&)>& forward) {
  torch::NoGradGuard no_grad;
  const Tf32Scope precision(tf32_);
  FiniteWatch watch;
  std::vector<std::string> pending;
  const LinearHook until_seen = [&](const std::string& name, const torch::Tensor& input) {
    watch.add(input, [&model, &block, name] {
      return fmt::format("in {}, the input of '{}'", model.family().block_label(block.index), name);
    });
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
  watch.verify();
}

}  // namespace presso

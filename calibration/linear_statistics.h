// Statistics of the inputs of linear layers, accumulated while calibration windows stream through
// a block (see calibration_data.h for the layer). Passes declare what they need in a StatsRequest;
// the driver merges the requests per linear, installs StatisticsCollector::as_hook() as the
// block's LinearHook, and hands each pass the finished LinearStatistics.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "calibration/input_observer.h"
#include "lib/model/block.h"

namespace presso {

// Which statistics of a linear's input x [tokens, in] to gather.
struct StatsRequest {
  bool hessian = false;   // XᵀX (GPTQ, SparseGPT, low-rank compensation)
  bool mean_abs = false;  // per-channel mean |x_j| (AWQ)
  bool sq_norm = false;   // per-channel ‖x_j‖² = Σ x_j² (Wanda takes its square root)

  StatsRequest& operator|=(const StatsRequest& other);
  bool any() const { return hessian || mean_abs || sq_norm; }
  bool operator==(const StatsRequest& other) const;
  bool operator!=(const StatsRequest& other) const { return !(*this == other); }
};
StatsRequest operator|(StatsRequest a, const StatsRequest& b);

// The raw sums of one input x [..., in] (fp32 on one device); those not requested stay undefined.
struct InputSums {
  StatsRequest request;
  torch::Device device = torch::kCPU;
  int64_t tokens = 0;
  int64_t samples = 0;
  torch::Tensor xtx, abs_sum, sq_norm;  // Σ xᵀx [in, in], Σ |x_j| [in], Σ x_j² [in]
};
// Computes them in chunks of bounded size, so a bf16 or remote input is never converted whole.
InputSums input_sums(const torch::Tensor& input, const StatsRequest& request,
                     torch::Device device);

// Accumulates the requested statistics over every input passed to add(), in fp32 whatever the
// activations' dtype, as raw sums plus a token count; the normalised forms are computed on
// demand. Asking for a statistic that was not requested, or for a normalised one before any
// token arrived, is an InternalError (a pass asking for what it did not declare).
class LinearStatistics : public InputObserver {
 public:
  // `device` holds the sums; nullopt puts them on the device of the first input.
  explicit LinearStatistics(StatsRequest request,
                            std::optional<torch::Device> device = std::nullopt);

  void observe(const torch::Tensor& input) override { add(input); }

  // x: [..., in] floating point (fp32, bf16, fp16, fp64), on any device. Converted to fp32 on the
  // accumulation device in chunks of bounded size, so a bf16 or remote input is never copied
  // whole. Every call must have the same `in`.
  void add(const torch::Tensor& input);
  // The same, from sums already computed for this input (for linears that share it); they must
  // cover request() and lie on this statistics' device.
  void add(const InputSums& sums, const torch::Tensor& input);
  // The device add() accumulates on for `input`.
  torch::Device device_for(const torch::Tensor& input) const {
    return device_.value_or(input.device());
  }

  // Inputs become x·diag(factor) ([in], e.g. 1/s after AWQ folds a scale s into the weights):
  // the gathered sums are transformed as if the new inputs had been accumulated instead.
  void scale_input_channels(const torch::Tensor& factor);

  const StatsRequest& request() const { return request_; }
  int64_t token_count() const { return tokens_; }
  // Sequences seen, counted as GPTQ counts them: the leading dimension of a [B, T, in] input; a
  // 2-D [tokens, in] input is one sequence.
  int64_t sample_count() const { return samples_; }
  int64_t in_features() const { return in_features_; }  // 0 before the first add

  // Raw sums over all tokens, fp32 (undefined tensors before the first add).
  const torch::Tensor& xtx() const;      // Σ xᵀx   [in, in]
  const torch::Tensor& abs_sum() const;  // Σ |x_j| [in]
  const torch::Tensor& sq_norm() const;  // Σ x_j²  [in]

  // Normalised forms (new tensors).
  // 2/n · XᵀX [in, in] with n = sample_count(): GPTQ's H exactly as GPTQ and llm-compressor
  // accumulate it (their n counts sequences, not tokens). Only the reported losses depend on the
  // scale; the sweep and the relative dampening do not.
  torch::Tensor hessian() const;
  torch::Tensor mean_abs() const;  // Σ |x_j| / n [in]
  torch::Tensor mean_square() const;  // Σ x_j² / n [in] (the importance of an MSE range search)

 private:
  void check_requested(bool requested, const char* what) const;
  void check_has_tokens(const char* what) const;

  StatsRequest request_;
  std::optional<torch::Device> device_;
  int64_t in_features_ = 0;
  int64_t tokens_ = 0;
  int64_t samples_ = 0;
  torch::Tensor xtx_, abs_sum_, sq_norm_;
};

// One LinearStatistics per linear, by full name ("model.layers.3.self_attn.q_proj").
class StatisticsCollector {
 public:
  // `device` as for LinearStatistics (nullopt: the activations' device).
  explicit StatisticsCollector(std::optional<torch::Device> device = std::nullopt);

  // Merges `request` into what is gathered for `linear_name`. Adding a statistic to a linear that
  // has already seen tokens is an InternalError: the new statistic would miss them.
  void request(const std::string& linear_name, const StatsRequest& request);

  // Adds `input` to the statistics of `linear_name`; linears nobody requested are ignored, so one
  // hook can serve the whole block.
  // Linears reading the same input tensor (q/k/v, gate/up) share one computation of its sums.
  void hook(const std::string& linear_name, const torch::Tensor& input);
  // hook() as the block's LinearHook; it refers to this collector, which must outlive it.
  LinearHook as_hook();

  bool contains(const std::string& linear_name) const;
  // InternalError naming the linear when it was never requested (or was taken).
  const LinearStatistics& at(const std::string& linear_name) const;
  LinearStatistics& at(const std::string& linear_name);
  // Moves the statistics out and forgets the linear (frees its memory once the caller is done).
  LinearStatistics take(const std::string& linear_name);
  // Stores statistics gathered elsewhere (e.g. by a second collector on a later run), replacing
  // those of the linear if any.
  void put(const std::string& linear_name, LinearStatistics statistics);
  std::vector<std::string> names() const;  // sorted
  void clear();

 private:
  std::optional<torch::Device> device_;
  std::map<std::string, LinearStatistics> stats_;
  // The input of the latest hook() and its sums, for the next linear that reads it.
  torch::Tensor last_input_;
  std::optional<InputSums> last_sums_;
};

}  // namespace presso

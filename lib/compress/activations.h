// The calibration activations as they stream through the model: the hidden states entering the
// current block, for every calibration window, kept on the compute device in fp32 (or bf16 to
// halve their memory). The driver runs blocks over them batch by batch.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/model/model.h"

namespace presso {

// UserError with the numbers, before anything is allocated, when `windows` calibration windows of
// `seqlen` tokens cannot fit in memory: the int64 token windows (host) and the hidden states in
// `dtype` (on `device`) live for the whole run. Host memory is compared with what the kernel says
// is available (lib/common/system_memory.h); a device's when the states are allocated there.
void check_calibration_fits(const ModelConfig& config, int64_t windows, int64_t seqlen,
                            torch::ScalarType dtype, const torch::Device& device);

// One window's largest intermediates in a block's forward (the MLP's [T, intermediate] and the
// attention scores [heads, T, T], fp32, a few alive at once), in bytes.
double window_intermediate_bytes(const ModelConfig& config, int64_t seqlen);
// BlockActivations::kept_input_dtype() of activations on `device` with or without TF32.
torch::ScalarType kept_input_dtype_for(const torch::Device& device, bool tf32);

// Windows per block run: `requested` (capped at `windows`), or with 0 as many as keep one
// batch's intermediates near 256 MiB.
int64_t calibration_batch_size(const ModelConfig& config, int64_t windows, int64_t seqlen,
                               int64_t requested);

class BlockActivations {
 public:
  // Embeds `windows` (int64 [N, T]) with `model`; hidden states are stored as `dtype` on the
  // model's device. `batch_size` windows run at a time (0 = chosen from the model's widths).
  // With `tf32`, the forwards below (and the hooks they call) multiply fp32 matrices in TF32 on a
  // CUDA device (tf32_scope.h).
  BlockActivations(const Model& model, const torch::Tensor& windows, torch::ScalarType dtype,
                   int64_t batch_size, bool tf32 = false);

  int64_t windows() const { return hidden_.size(0); }
  int64_t tokens() const { return hidden_.size(0) * hidden_.size(1); }
  int64_t batch_size() const { return batch_size_; }
  uint64_t bytes() const { return hidden_.numel() * hidden_.element_size(); }
  // The dtype to keep a copy of a linear's input in, for a later observe_module() (in which only
  // matrix products read it). fp16 when the forwards multiply in TF32 on a CUDA device: TF32
  // reads no more of a mantissa than fp16 holds (10 bits), so the products are the fp32 input's
  // but for values below fp16's normal range (6e-5), which carry less (the keeper checks that
  // fp16's range held every value); fp32 otherwise.
  torch::ScalarType kept_input_dtype() const;
  // The windows in runs of batch_size(): batch `index` as fp32 [B, T, H] on the model's device.
  int64_t batches() const { return (windows() + batch_size_ - 1) / batch_size_; }
  torch::Tensor batch(int64_t index) const;

  // Runs `block` over every window with `hook` on its linears. With `advance`, the outputs
  // replace the stored states (they become the next block's inputs); without, they are dropped
  // (a statistics-gathering run). Checks for Ctrl-C between batches. Like observe(), it checks
  // that what it computed is finite once at the end (UserError naming the first place that is
  // not), so a GPU is never made to wait for the host inside the loop.
  void run(const Model& model, const DecoderBlock& block, const LinearHook* hook, bool advance);

  // A statistics run that needs only the inputs of `needed` (linears of `block`): each batch's
  // forward ends once all of them have been seen, so gathering q/k/v's inputs costs a norm, not
  // the block, and an o_proj's costs the attention.
  void observe(const Model& model, const DecoderBlock& block, const LinearHook& hook,
               const std::vector<std::string>& needed);
  // The same from the input of `module` (one of the family's modules) instead of the block's:
  // inputs[i] is that module's input for batch i, as an earlier run of the block saw it.
  void observe_module(const Model& model, const DecoderBlock& block, const std::string& module,
                      const std::vector<torch::Tensor>& inputs, const LinearHook& hook,
                      const std::vector<std::string>& needed);

 private:
  // Runs forward(batch index, first window, end window, hook) over every batch, with a hook that
  // ends each batch's forward once every needed input was seen.
  void observe_batches(
      const Model& model, const DecoderBlock& block, const LinearHook& hook,
      const std::vector<std::string>& needed,
      const std::function<void(int64_t, int64_t, int64_t, const LinearHook&)>& forward);

  torch::Tensor hidden_;  // [N, T, H]
  int64_t batch_size_;
  bool tf32_;
};

}  // namespace presso

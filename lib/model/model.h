// lib/model: a Hugging Face checkpoint opened for compute. The forward is organised as
// embeddings -> decoder blocks -> final norm + lm_head, and each block can be loaded and run on
// its own, so the compression driver can hold one block at a time. Everything is fp32 (stored
// bf16/fp16 is upcast on load) and matches transformers' eager forward.
//
// A Model caches masks and rope tables per sequence length; it is not thread-safe.
#pragma once

#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/io/safetensors.h"
#include "lib/model/block.h"
#include "lib/model/config.h"
#include "lib/model/family.h"
#include "lib/model/ops.h"
#include "lib/model/packed_weights.h"

namespace presso {

// A linear module of the model as transformers builds it; the one list that the compression
// plan, the quantization configs and `inspect` read.
struct ModelLinear {
  std::string name;  // full name, no suffix: "model.layers.3.mlp.up_proj", "lm_head"
  int64_t out = 0;
  int64_t in = 0;
  int block = -1;     // the decoder block holding it; -1 outside the blocks
  bool tied = false;  // lm_head sharing the embedding: a module without a tensor of its own
};

class Model {
 public:
  // Reads config.json and opens the safetensors lazily; no weight is read yet. UserError for a
  // bad config, a quantization_config presso cannot read (packed_weights.h), or a checkpoint
  // without the family's embedding tensor.
  static Model open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return *config_; }
  const FamilySpec& family() const { return spec_; }
  const TensorStore& tensors() const { return store_; }
  // Linears stored packed (a quantized checkpoint); they load dequantized to fp32 [out, in].
  const PackedWeights& packed() const { return packed_; }
  int num_blocks() const { return static_cast<int>(config_->num_layers); }
  torch::Device device() const { return device_; }

  // input_ids [B, T] int64 -> hidden [B, T, hidden_size] (token + learned position embeddings).
  torch::Tensor embed(const torch::Tensor& input_ids) const;
  // Reads block `index`'s weights (fp32, Conv1D transposed to [out, in], packed linears
  // dequantized) onto device(). UserError naming the tensor if one is missing or has the wrong
  // shape.
  DecoderBlock load_block(int index) const;
  // The same on `device` instead of the model's (a block read ahead on the host).
  DecoderBlock load_block(int index, torch::Device device) const;
  // hidden [B, T, H] -> [B, T, H]; `hook` (optional) sees every linear's input first.
  torch::Tensor run_block(const DecoderBlock& block, const torch::Tensor& hidden,
                          const LinearHook* hook = nullptr) const;
  // Runs one module of the block (a ModuleSpec name such as "mlp", or a linear's relative name
  // such as "mlp.down_proj") on its input [B, T, in]; returns its output [B, T, out].
  torch::Tensor run_module(const DecoderBlock& block, const std::string& module,
                           const torch::Tensor& input, const LinearHook* hook = nullptr) const;
  // Final norm (+ OPT's project_out) + lm_head: hidden [B, T, H] -> logits [B, T, vocab] fp32.
  torch::Tensor head(const torch::Tensor& hidden) const;
  // The whole model; blocks are loaded on first use and kept.
  torch::Tensor forward(const torch::Tensor& input_ids) const;
  // The first stage of the forward of `input_ids` whose output holds a NaN or an infinity —
  // "the embeddings (model.embed_tokens.weight)", "block 3 (model.layers.3)", "the final norm
  // (model.norm)", "project_out (...)" or "lm_head" — or nullopt when the logits are finite.
  // It runs the forward again, checking every stage: for the rare batch whose logits were not.
  std::optional<std::string> first_non_finite_stage(const torch::Tensor& input_ids) const;

  // UserError naming config.json's key unless sequences of `length` tokens fit the model's
  // positions; `what` says where the length comes from ("--seqlen").
  void check_sequence_length(int64_t length, const std::string& what) const;
  // UserError listing every tensor the model reads that is missing or whose shape disagrees
  // with config.json (both shapes named); reads the headers only. Packed linears are checked
  // when they load.
  void check_tensor_shapes() const;

  // Low-rank paths that every block loaded from now on carries on its linears (a PEFT adapter,
  // peft_adapter.h), by full linear name.
  void set_lowrank_paths(std::map<std::string, LowRankPair> paths);

  // Moves every loaded weight, and what is loaded later, to `device`.
  void to(torch::Device device);
  // Drops the blocks kept by forward().
  void release_blocks();
  // Drops the embeddings, final norm and lm_head (loaded again on next use), e.g. once the
  // compression driver has embedded its calibration windows.
  void release_outer();

  // Every linear module in forward order: OPT's project_in and project_out, the block linears
  // block by block in the family's order, and lm_head (marked when tied).
  std::vector<ModelLinear> linears() const;
  // The linear's weight as the checkpoint holds it: fp32 [out, in] on device() (Conv1D
  // transposed, packed weights dequantized). UserError naming the tensor when it is missing.
  torch::Tensor load_linear_weight(const std::string& name) const;

  // Every stored tensor the model reads (a tied lm_head is not one), for counting and writing;
  // a packed linear contributes its stored tensors (qweight, ... or weight_packed, ...).
  std::vector<std::string> tensor_names() const;
  // Parameters of the model as transformers counts the dense one: a packed linear counts as its
  // logical [out, in] weight.
  int64_t parameter_count() const;

 private:
  struct Outer {
    torch::Tensor embed_tokens;  // [vocab, word_embed_proj_dim or hidden]
    torch::Tensor positions;     // [rows, hidden], undefined without learned positions
    std::optional<Linear> project_in;
    std::optional<Linear> project_out;
    std::optional<Norm> final_norm;
    torch::Tensor lm_head;  // [vocab, ...]; the embedding itself when tied; see lm_head_weight()
  };

  // Called after each stage of the forward with its output and its name as
  // first_non_finite_stage() gives it; returning true stops the forward there.
  using StageCheck = std::function<bool(const torch::Tensor& output, const std::string& stage)>;
  // Every tensor the model reads, with the shape config.json implies (nullptr for the stored
  // tensors of a packed linear, whose layout has its own), in tensor_names() order.
  using TensorVisitor =
      std::function<void(const std::string& name, const std::vector<int64_t>* shape)>;

  Model() = default;
  torch::Tensor run_stages(const torch::Tensor& input_ids, const StageCheck& check) const;
  torch::Tensor head_stages(const torch::Tensor& hidden, const StageCheck& check) const;
  void for_each_tensor(const TensorVisitor& visit) const;
  int64_t embed_dim() const;
  const Outer& outer() const;
  const torch::Tensor& lm_head_weight() const;
  // On the model's device, or on `device`.
  torch::Tensor load_tensor(const std::string& name, const std::vector<int64_t>& shape,
                            const std::string& needed_by,
                            std::optional<torch::Device> device = std::nullopt) const;
  Linear load_linear(const LinearSpec& spec, const std::string& prefix,
                     const std::string& needed_by,
                     std::optional<torch::Device> device = std::nullopt) const;
  Norm load_norm(const NormSpec& spec, const std::string& prefix, const std::string& needed_by,
                 std::optional<torch::Device> device = std::nullopt) const;
  torch::Tensor apply_norm(const NormSpec& spec, const Norm& norm, const torch::Tensor& x) const;

  std::string dir_;
  std::unique_ptr<ModelConfig> config_;  // on the heap: cache_ refers to it across moves
  FamilySpec spec_;
  TensorStore store_;
  PackedWeights packed_;
  torch::Device device_ = torch::kCPU;
  std::unique_ptr<AttentionCache> cache_;
  mutable std::optional<Outer> outer_;
  mutable std::vector<std::optional<DecoderBlock>> blocks_;
  std::map<std::string, LowRankPair> lowrank_paths_;
};

}  // namespace presso

// lib/model: the weights of one decoder block in memory, uniform across families, so that the
// compression driver and the passes can find and replace any linear by its full name.
#pragma once

#include <torch/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace presso {

// A residual path beside a linear, as PEFT's LoRA runs it: y += (x Aᵀ) Bᵀ.
struct LowRankPair {
  torch::Tensor a;  // [rank, in]  (PEFT's lora_A)
  torch::Tensor b;  // [out, rank] (PEFT's lora_B)
};

// One linear layer: y = x W^T + b (+ the low-rank path), W always [out, in] fp32 in memory.
struct Linear {
  std::string name;      // full name without ".weight": "model.layers.3.self_attn.q_proj"
  torch::Tensor weight;  // [out, in]; what a checkpoint stores
  std::optional<torch::Tensor> bias;  // [out]
  // Kept apart from `weight` (written as an adapter, not merged), but part of every forward.
  std::optional<LowRankPair> lowrank;
  // GPT-2's Conv1D stores [in, out]; the loader transposed it, so a writer must transpose back.
  bool stored_transposed = false;
};

// W + B·A: the weight the linear computes with, low-rank path included ([out, in]).
torch::Tensor effective_weight(const Linear& linear);

// RMSNorm or LayerNorm parameters; `weight` is undefined for a LayerNorm without affine params.
struct Norm {
  std::string name;  // "model.layers.3.input_layernorm"
  torch::Tensor weight;
  std::optional<torch::Tensor> bias;
};

struct DecoderBlock {
  int index = 0;
  std::string prefix;           // "model.layers.3."
  std::vector<Linear> linears;  // in the family's order
  std::vector<Norm> norms;

  // By name relative to the block ("self_attn.q_proj"); InternalError when absent.
  const Linear& linear(const std::string& relative_name) const;
  Linear& linear(const std::string& relative_name);
  const Norm& norm(const std::string& relative_name) const;
  bool has_norm(const std::string& relative_name) const;
  // By full name ("model.layers.3.self_attn.q_proj"); nullptr when absent.
  Linear* find_linear(const std::string& full_name);

  void to(torch::Device device);
  int64_t parameter_count() const;
};

// Called with every linear's full name and its input [B, T, in] just before the linear runs (for
// fused or shared inputs, once per linear). The driver accumulates statistics here.
using LinearHook = std::function<void(const std::string& linear_name, const torch::Tensor& input)>;

}  // namespace presso

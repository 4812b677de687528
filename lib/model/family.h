// lib/model: architecture families as data. A FamilySpec says, for one checkpoint's config, which
// tensors exist and how they are named, which norm feeds which linears (for AWQ's folding), which
// linears carry a bias or are stored transposed, and which block forward runs them. One file per
// family (family_llama.cpp, family_opt.cpp, family_gpt2.cpp) provides a FamilyEntry; the single
// registry in family.cpp lists them by model_type.
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>
#include <vector>

#include "lib/model/block.h"
#include "lib/model/config.h"

namespace presso {

class ConfigReader;
class AttentionCache;

enum class NormKind { kRms, kLayer };

struct NormSpec {
  std::string name;  // relative to the block (or, for the final norm, to the base prefix)
  NormKind kind = NormKind::kRms;
  int64_t dim = 0;
  bool has_weight = true;
  bool has_bias = false;
};

struct LinearSpec {
  std::string name;  // relative: "self_attn.q_proj"
  int64_t out = 0;
  int64_t in = 0;
  bool bias = false;
  bool conv1d = false;     // stored [in, out] (GPT-2 Conv1D): transposed on load
  bool fused_qkv = false;  // output is [q; k; v] along dim 0 (GPT-2 c_attn)
};

// A producer (a norm or a linear of the block) whose output is the whole input of `consumers`, or
// reaches it through an operation that commutes with a positive per-channel scale (llama's
// SiLU(gate)·up, OPT's ReLU): the places where a per-channel scale can be folded
// (llm-compressor's AWQ mappings).
struct ScaleGroup {
  std::string producer;
  std::vector<std::string> consumers;
};

struct BlockContext {
  const ModelConfig& config;
  AttentionCache& cache;
};

// Runs one block: hidden [B, T, H] -> [B, T, H], calling `hook` (if not null) before each linear.
using BlockForward = torch::Tensor (*)(const BlockContext& ctx, const DecoderBlock& block,
                                       const torch::Tensor& hidden, const LinearHook* hook);

// Runs one part of a block on that part's input (what its first linear reads) and returns what
// the block adds to the residual stream, calling `hook` (if not null) before each linear.
using ModuleForward = torch::Tensor (*)(const BlockContext& ctx, const DecoderBlock& block,
                                        const torch::Tensor& input, const LinearHook* hook);

// A part of the block that can run alone — the attention, the MLP — so that a pass can measure
// the output of the module holding a group of linears (AWQ's scale search). The block forward is
// built from the same functions, so a module run computes exactly what the block does.
struct ModuleSpec {
  std::string name;  // relative to the block: "self_attn", "mlp"
  // Relative names in forward order; the first one reads the module's input.
  std::vector<std::string> linears;
  ModuleForward forward = nullptr;
};

struct LearnedPositions {
  std::string name;    // "embed_positions.weight"
  int64_t offset = 0;  // OPT's table starts 2 rows in (OPTLearnedPositionalEmbedding)
};

struct FamilySpec {
  std::string name;  // registry name: "llama"
  // Where the base model's tensors live; the first candidate under which `embed_tokens` exists
  // is chosen when a checkpoint is opened (GPT-2 on the Hub may lack "transformer.").
  std::vector<std::string> prefix_candidates;
  std::string prefix;

  std::string embed_tokens;  // relative to prefix, with ".weight"
  std::optional<LearnedPositions> positions;
  // The config.json key of the longest sequence the model takes (max_position_embeddings).
  std::string positions_key = "max_position_embeddings";
  std::optional<LinearSpec> project_in;  // relative to prefix (OPT word_embed_proj_dim)
  std::optional<LinearSpec> project_out;
  std::optional<NormSpec> final_norm;  // relative to prefix
  std::string lm_head = "lm_head";     // absolute; unused when tied
  bool tied_lm_head = false;

  std::string block_prefix;  // relative to prefix, "{}" is the block index: "layers.{}."
  std::vector<NormSpec> block_norms;
  std::vector<LinearSpec> block_linears;
  std::vector<ScaleGroup> scale_groups;
  // The block's linears grouped by shared input, groups in forward order (each reads what the
  // groups before it produce): the steps of true-sequential quantization.
  std::vector<std::vector<std::string>> sequential_groups;
  std::vector<ModuleSpec> modules;
  BlockForward forward = nullptr;

  std::string block_name(int index) const;   // "model.layers.3."
  std::string block_label(int index) const;  // for messages: "block 3 (model.layers.3)"
  // The module named `relative` ("mlp"), or nullptr.
  const ModuleSpec* find_module(const std::string& relative) const;
  std::string tensor(const std::string& relative) const { return prefix + relative; }
};

struct FamilyEntry {
  std::string name;
  std::vector<std::string> model_types;
  // Reads the family's keys into `config` (sizes, biases, windows, rope, activation).
  void (*parse_config)(ConfigReader& reader, ModelConfig& config);
  FamilySpec (*describe)(const ModelConfig& config);
};

FamilyEntry llama_family();
FamilyEntry opt_family();
FamilyEntry gpt2_family();

// The registry: every supported family, in one place.
const std::vector<FamilyEntry>& model_families();
// The entry handling `model_type`, or nullptr.
const FamilyEntry* find_family(const std::string& model_type);
std::vector<std::string> supported_model_types();  // sorted

}  // namespace presso

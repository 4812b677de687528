// lib/model: model configs, architecture families (as data) and the LibTorch forward of each.
// Knows nothing of passes, recipes or the terminal. May include lib/common, lib/io, LibTorch,
// nlohmann-json (in .cpp files and config_reader.h only) and fmt.
//
// This header: `config.json` parsed into one ModelConfig whatever the family, with the defaults
// transformers 5 applies. Every problem in the file is reported at once in one UserError naming
// the file and the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace presso {

enum class Activation { kSilu, kRelu, kGelu, kGeluTanh };
const char* activation_name(Activation activation);

// transformers' `rope_type`s that presso implements (modeling_rope_utils.py); dynamic, yarn and
// longrope are rejected when the config is read.
enum class RopeType { kDefault, kLinear, kLlama3 };
const char* rope_type_name(RopeType type);

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;                           // linear, llama3
  double low_freq_factor = 1.0;                  // llama3
  double high_freq_factor = 4.0;                 // llama3
  int64_t original_max_position_embeddings = 0;  // llama3

  bool operator==(const RopeConfig& other) const;
  bool operator!=(const RopeConfig& other) const { return !(*this == other); }
};

struct ModelConfig {
  std::string path;        // the config.json it was read from
  std::string model_type;  // "llama", "mistral", "qwen2", "qwen3", "opt", "gpt2"
  std::string family;      // the registry entry that handles it: "llama", "opt", "gpt2"

  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // may differ from hidden_size / num_heads (qwen3)
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  Activation activation = Activation::kSilu;

  bool qkv_bias = false;  // llama/qwen3 `attention_bias`; always on for qwen2
  bool o_bias = false;
  bool mlp_bias = false;

  // Per layer: the attention window (a query at i sees keys j with i - w < j <= i), or 0 for
  // full causal attention.
  std::vector<int64_t> sliding_windows;
  std::optional<RopeConfig> rope;  // absent for learned-position families (opt, gpt2)

  // OPT.
  bool layer_norm_before = true;    // `do_layer_norm_before`; false is post-LN (opt-350m)
  int64_t word_embed_proj_dim = 0;  // != hidden_size means project_in / project_out exist
  bool final_norm = true;           // false when `_remove_final_layer_norm` or post-LN
  bool norm_affine = true;          // `layer_norm_elementwise_affine`

  // GPT-2.
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;

  std::optional<int64_t> eos_token_id;  // the first one when config.json lists several
  std::string quantization_config;  // raw JSON of `quantization_config`, empty if none
  // `dtype` (transformers 5) or `torch_dtype`: what serving engines compute in, and cast a
  // packed checkpoint's scales to; empty if neither is a string.
  std::string dtype;
};

// Reads `<model_dir>/config.json`. Throws UserError for a missing or unreadable file, invalid
// JSON, an unsupported model_type (listing the supported ones) or bad keys (all of them).
ModelConfig load_model_config(const std::string& model_dir);

// Parses config text; `file` is only used in messages.
ModelConfig parse_model_config(const std::string& json_text, const std::string& file);

}  // namespace presso

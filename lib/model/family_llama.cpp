// The llama family: Llama 1/2/3, Mistral, Qwen2 (q/k/v bias) and Qwen3 (per-head q/k RMSNorm).
// Pre-norm decoder blocks with RMSNorm, rotary positions, grouped-query attention and a gated
// MLP, as in transformers' modeling_llama.py and its copies.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lib/model/config_reader.h"
#include "lib/model/family.h"
#include "lib/model/ops.h"

namespace presso {
namespace {

// Per-layer windows as transformers 5 derives them. Mistral: `sliding_window` (class default
// 4096 when the key is absent, null = off) for every layer. Qwen2/3: `layer_types`, else
// sliding layers from `max_window_layers` on; their `sliding_window` counts only with
// `use_sliding_window` (Qwen2Config.__post_init__).
void parse_windows(ConfigReader& r, ModelConfig& c) {
  c.sliding_windows.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), 0);
  if (c.model_type == "mistral") {
    const int64_t window =
        r.present("sliding_window") ? r.int_or("sliding_window", 0) : int64_t{4096};
    if (r.has("sliding_window")) r.positive("sliding_window", window);
    c.sliding_windows.assign(c.sliding_windows.size(), std::max<int64_t>(window, 0));
    return;
  }
  if (c.model_type != "qwen2" && c.model_type != "qwen3") return;
  const bool use = r.bool_or("use_sliding_window", false);
  const int64_t window = use ? r.positive("sliding_window", r.int_or("sliding_window", 4096)) : 0;
  const int64_t max_window_layers = r.int_or("max_window_layers", 28);
  auto layer_types = r.optional_string_list("layer_types");
  if (layer_types && static_cast<int64_t>(layer_types->size()) != c.num_layers) {
    r.problem("layer_types",
              fmt::format("has {} entries for {} layers", layer_types->size(), c.num_layers));
    return;
  }
  for (size_t i = 0; i < c.sliding_windows.size(); ++i) {
    bool sliding = use && static_cast<int64_t>(i) >= max_window_layers;
    if (layer_types) {
      const std::string& type = (*layer_types)[i];
      if (type != "full_attention" && type != "sliding_attention") {
        r.problem("layer_types", fmt::format("entry {} is '{}' (expected full_attention or "
                                             "sliding_attention)",
                                             i, type));
      }
      sliding = type == "sliding_attention";
    }
    c.sliding_windows[i] = sliding ? std::max<int64_t>(window, 0) : 0;
  }
}

void parse_llama(ConfigReader& r, ModelConfig& c) {
  c.hidden_size = r.positive("hidden_size", r.required_int("hidden_size"));
  c.intermediate_size = r.positive("intermediate_size", r.required_int("intermediate_size"));
  c.num_layers = r.positive("num_hidden_layers", r.required_int("num_hidden_layers"));
  c.num_heads = r.positive("num_attention_heads", r.required_int("num_attention_heads"));
  c.num_kv_heads = r.positive("num_key_value_heads", r.int_or("num_key_value_heads", c.num_heads));
  c.vocab_size = r.positive("vocab_size", r.required_int("vocab_size"));
  c.max_position_embeddings =
      r.positive("max_position_embeddings", r.int_or("max_position_embeddings", 2048));
  c.norm_eps = r.non_negative("rms_norm_eps", r.number_or("rms_norm_eps", 1e-6));
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
  c.activation = parse_activation(r, "hidden_act", "silu");
  if (r.has("head_dim")) {
    c.head_dim = r.positive("head_dim", r.int_or("head_dim", 0));
  } else if (c.num_heads > 0 && c.hidden_size % c.num_heads != 0) {
    r.problem("num_attention_heads",
              fmt::format("{} does not divide hidden_size {} and no head_dim is given", c.num_heads,
                          c.hidden_size));
  } else if (c.num_heads > 0) {
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) {
    r.problem("head_dim",
              fmt::format("{} is odd; rotary embeddings need an even size", c.head_dim));
  }
  if (c.num_heads > 0 && c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads != 0) {
    r.problem("num_key_value_heads", fmt::format("{} does not divide num_attention_heads {}",
                                                 c.num_kv_heads, c.num_heads));
  }
  // Qwen2 always has q/k/v biases and none on o_proj; llama and qwen3 put `attention_bias` on
  // all four; mistral has none; only llama has `mlp_bias`.
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;
  } else if (c.model_type != "mistral") {
    c.qkv_bias = c.o_bias = r.bool_or("attention_bias", false);
  }
  if (c.model_type == "llama") c.mlp_bias = r.bool_or("mlp_bias", false);
  parse_windows(r, c);
  c.rope = parse_rope(r);
}

// Input: the normed hidden states [B, T, H]; output: o_proj's.
torch::Tensor llama_attention(const BlockContext& ctx, const DecoderBlock& b,
                              const torch::Tensor& h, const LinearHook* hook) {
  const ModelConfig& c = ctx.config;
  const int64_t batch = h.size(0), seq = h.size(1);
  // [B, T, heads * d] -> [B, T, heads, d]; Qwen3 normalises each head before rope.
  auto q = run_linear(b.linear("self_attn.q_proj"), h, hook).view({batch, seq, -1, c.head_dim});
  auto k = run_linear(b.linear("self_attn.k_proj"), h, hook).view({batch, seq, -1, c.head_dim});
  auto v = run_linear(b.linear("self_attn.v_proj"), h, hook).view({batch, seq, -1, c.head_dim});
  if (b.has_norm("self_attn.q_norm")) {
    q = rms_norm(q, b.norm("self_attn.q_norm"), c.norm_eps);
    k = rms_norm(k, b.norm("self_attn.k_norm"), c.norm_eps);
  }
  const auto& cos_sin = ctx.cache.rope(seq, h.device());
  q = apply_rope(q.transpose(1, 2), cos_sin.first, cos_sin.second);
  k = apply_rope(k.transpose(1, 2), cos_sin.first, cos_sin.second);
  const int64_t window = c.sliding_windows[b.index];
  const auto& mask = ctx.cache.mask(seq, window, h.device());
  auto attn = causal_attention(q, k, v.transpose(1, 2), mask, 1.0 / std::sqrt(c.head_dim), window);
  return run_linear(b.linear("self_attn.o_proj"), attn, hook);
}

torch::Tensor llama_mlp(const BlockContext& ctx, const DecoderBlock& b, const torch::Tensor& h,
                        const LinearHook* hook) {
  auto gate = run_linear(b.linear("mlp.gate_proj"), h, hook);
  auto up = run_linear(b.linear("mlp.up_proj"), h, hook);
  return run_linear(b.linear("mlp.down_proj"), activate(gate, ctx.config.activation) * up, hook);
}

torch::Tensor llama_block(const BlockContext& ctx, const DecoderBlock& b,
                          const torch::Tensor& hidden, const LinearHook* hook) {
  const ModelConfig& c = ctx.config;
  auto h = rms_norm(hidden, b.norm("input_layernorm"), c.norm_eps);
  auto x = hidden + llama_attention(ctx, b, h, hook);
  h = rms_norm(x, b.norm("post_attention_layernorm"), c.norm_eps);
  return x + llama_mlp(ctx, b, h, hook);
}

FamilySpec describe_llama(const ModelConfig& c) {
  FamilySpec s;
  s.name = "llama";
  s.prefix_candidates = {"model."};
  s.embed_tokens = "embed_tokens.weight";
  s.final_norm = NormSpec{"norm", NormKind::kRms, c.hidden_size};
  s.tied_lm_head = c.tie_word_embeddings;
  s.block_prefix = "layers.{}.";
  s.block_norms = {{"input_layernorm", NormKind::kRms, c.hidden_size},
                   {"post_attention_layernorm", NormKind::kRms, c.hidden_size}};
  if (c.model_type == "qwen3") {
    s.block_norms.push_back({"self_attn.q_norm", NormKind::kRms, c.head_dim});
    s.block_norms.push_back({"self_attn.k_norm", NormKind::kRms, c.head_dim});
  }
  const int64_t q_out = c.num_heads * c.head_dim, kv_out = c.num_kv_heads * c.head_dim;
  s.block_linears = {
      {"self_attn.q_proj", q_out, c.hidden_size, c.qkv_bias},
      {"self_attn.k_proj", kv_out, c.hidden_size, c.qkv_bias},
      {"self_attn.v_proj", kv_out, c.hidden_size, c.qkv_bias},
      {"self_attn.o_proj", c.hidden_size, q_out, c.o_bias},
      {"mlp.gate_proj", c.intermediate_size, c.hidden_size, c.mlp_bias},
      {"mlp.up_proj", c.intermediate_size, c.hidden_size, c.mlp_bias},
      {"mlp.down_proj", c.hidden_size, c.intermediate_size, c.mlp_bias},
  };
  s.scale_groups.push_back(
      {"input_layernorm", {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}});
  // With GQA v_proj's outputs are shared by several heads of o_proj's input, so no per-channel
  // scale can pass between them (llm-compressor skips that mapping when the shapes differ).
  if (c.num_kv_heads == c.num_heads) {
    s.scale_groups.push_back({"self_attn.v_proj", {"self_attn.o_proj"}});
  }
  s.scale_groups.push_back({"post_attention_layernorm", {"mlp.gate_proj", "mlp.up_proj"}});
  s.scale_groups.push_back({"mlp.up_proj", {"mlp.down_proj"}});
  s.sequential_groups = {{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
                         {"self_attn.o_proj"},
                         {"mlp.gate_proj", "mlp.up_proj"},
                         {"mlp.down_proj"}};
  s.modules = {{"self_attn",
                {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"},
                llama_attention},
               {"mlp", {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}, llama_mlp}};
  s.forward = llama_block;
  return s;
}

}  // namespace

FamilyEntry llama_family() {
  return {"llama", {"llama", "mistral", "qwen2", "qwen3"}, parse_llama, describe_llama};
}

}  // namespace presso

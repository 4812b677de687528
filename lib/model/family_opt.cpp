// The OPT family (modeling_opt.py): learned positions offset by 2, LayerNorm before (or, for
// opt-350m, after) each sub-block, ReLU MLP fc1/fc2, optional project_in/project_out when
// word_embed_proj_dim differs from hidden_size.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lib/model/config_reader.h"
#include "lib/model/family.h"
#include "lib/model/ops.h"

namespace presso {
namespace {

void parse_opt(ConfigReader& r, ModelConfig& c) {
  c.hidden_size = r.positive("hidden_size", r.required_int("hidden_size"));
  c.intermediate_size = r.positive("ffn_dim", r.required_int("ffn_dim"));
  c.num_layers = r.positive("num_hidden_layers", r.required_int("num_hidden_layers"));
  c.num_heads = r.positive("num_attention_heads", r.required_int("num_attention_heads"));
  c.num_kv_heads = c.num_heads;
  c.vocab_size = r.positive("vocab_size", r.required_int("vocab_size"));
  if (c.num_heads > 0 && c.hidden_size % c.num_heads != 0) {
    r.problem("num_attention_heads",
              fmt::format("{} does not divide hidden_size {}", c.num_heads, c.hidden_size));
  } else if (c.num_heads > 0) {
    c.head_dim = c.hidden_size / c.num_heads;
  }
  c.max_position_embeddings =
      r.positive("max_position_embeddings", r.int_or("max_position_embeddings", 2048));
  c.layer_norm_before = r.bool_or("do_layer_norm_before", true);
  c.word_embed_proj_dim =
      r.positive("word_embed_proj_dim", r.int_or("word_embed_proj_dim", c.hidden_size));
  c.qkv_bias = c.o_bias = c.mlp_bias = r.bool_or("enable_bias", true);
  // OPTDecoder keeps a final LayerNorm only for pre-LN models not fine-tuned before v4.20.1.
  c.final_norm = c.layer_norm_before && !r.bool_or("_remove_final_layer_norm", false);
  c.norm_affine = r.bool_or("layer_norm_elementwise_affine", true);
  c.norm_eps = 1e-5;  // nn.LayerNorm's default; OPT has no eps key
  c.activation = parse_activation(r, "activation_function", "relu");
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", true);
  c.sliding_windows.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), 0);
}

// Input: what q/k/v read (normed first for pre-LN models); output: out_proj's.
torch::Tensor opt_attention(const BlockContext& ctx, const DecoderBlock& b, const torch::Tensor& h,
                            const LinearHook* hook) {
  const ModelConfig& c = ctx.config;
  const int64_t batch = h.size(0), seq = h.size(1);
  // OPTAttention scales q by head_dim^-0.5 after the projection (and attends with scaling 1).
  auto q = run_linear(b.linear("self_attn.q_proj"), h, hook) * (1.0 / std::sqrt(c.head_dim));
  auto k = run_linear(b.linear("self_attn.k_proj"), h, hook);
  auto v = run_linear(b.linear("self_attn.v_proj"), h, hook);
  auto heads = [&](const torch::Tensor& t) {
    return t.view({batch, seq, c.num_heads, c.head_dim}).transpose(1, 2);
  };
  const auto& mask = ctx.cache.mask(seq, 0, h.device());
  auto attn = causal_attention(heads(q), heads(k), heads(v), mask, 1.0, 0);
  return run_linear(b.linear("self_attn.out_proj"), attn, hook);
}

// fc1 -> activation -> fc2 (OPTDecoderLayer has no MLP module; presso calls the pair "mlp").
torch::Tensor opt_mlp(const BlockContext& ctx, const DecoderBlock& b, const torch::Tensor& h,
                      const LinearHook* hook) {
  auto a = activate(run_linear(b.linear("fc1"), h, hook), ctx.config.activation);
  return run_linear(b.linear("fc2"), a, hook);
}

torch::Tensor opt_block(const BlockContext& ctx, const DecoderBlock& b, const torch::Tensor& hidden,
                        const LinearHook* hook) {
  const ModelConfig& c = ctx.config;
  const bool pre = c.layer_norm_before;
  auto h = pre ? layer_norm(hidden, b.norm("self_attn_layer_norm"), c.norm_eps) : hidden;
  auto x = hidden + opt_attention(ctx, b, h, hook);
  if (!pre) x = layer_norm(x, b.norm("self_attn_layer_norm"), c.norm_eps);
  h = pre ? layer_norm(x, b.norm("final_layer_norm"), c.norm_eps) : x;
  x = x + opt_mlp(ctx, b, h, hook);
  if (!pre) x = layer_norm(x, b.norm("final_layer_norm"), c.norm_eps);
  return x;
}

FamilySpec describe_opt(const ModelConfig& c) {
  FamilySpec s;
  s.name = "opt";
  // OPTForCausalLM checkpoints say "model.decoder."; early Hub uploads of OPTModel "decoder.".
  s.prefix_candidates = {"model.decoder.", "decoder."};
  s.embed_tokens = "embed_tokens.weight";
  s.positions = LearnedPositions{"embed_positions.weight", 2};
  if (c.word_embed_proj_dim != c.hidden_size) {
    s.project_in = LinearSpec{"project_in", c.hidden_size, c.word_embed_proj_dim, false};
    s.project_out = LinearSpec{"project_out", c.word_embed_proj_dim, c.hidden_size, false};
  }
  const NormSpec layer_norm_spec{"", NormKind::kLayer, c.hidden_size, c.norm_affine, c.norm_affine};
  if (c.final_norm) {
    s.final_norm = layer_norm_spec;
    s.final_norm->name = "final_layer_norm";
  }
  s.tied_lm_head = c.tie_word_embeddings;
  s.block_prefix = "layers.{}.";
  s.block_norms = {layer_norm_spec, layer_norm_spec};
  s.block_norms[0].name = "self_attn_layer_norm";
  s.block_norms[1].name = "final_layer_norm";
  s.block_linears = {
      {"self_attn.q_proj", c.hidden_size, c.hidden_size, c.qkv_bias},
      {"self_attn.k_proj", c.hidden_size, c.hidden_size, c.qkv_bias},
      {"self_attn.v_proj", c.hidden_size, c.hidden_size, c.qkv_bias},
      {"self_attn.out_proj", c.hidden_size, c.hidden_size, c.o_bias},
      {"fc1", c.intermediate_size, c.hidden_size, c.mlp_bias},
      {"fc2", c.hidden_size, c.intermediate_size, c.mlp_bias},
  };
  // A post-LN norm's output is also the residual, so a scale cannot be folded into it.
  if (c.layer_norm_before) {
    s.scale_groups.push_back(
        {"self_attn_layer_norm", {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}});
  }
  s.scale_groups.push_back({"self_attn.v_proj", {"self_attn.out_proj"}});
  if (c.layer_norm_before) s.scale_groups.push_back({"final_layer_norm", {"fc1"}});
  // ReLU(x/s) = ReLU(x)/s for s > 0, so fc1's rows can take a scale that fc2's columns undo.
  if (c.activation == Activation::kRelu) s.scale_groups.push_back({"fc1", {"fc2"}});
  s.sequential_groups = {{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
                         {"self_attn.out_proj"},
                         {"fc1"},
                         {"fc2"}};
  s.modules = {{"self_attn",
                {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"},
                opt_attention},
               {"mlp", {"fc1", "fc2"}, opt_mlp}};
  s.forward = opt_block;
  return s;
}

}  // namespace

FamilyEntry opt_family() { return {"opt", {"opt"}, parse_opt, describe_opt}; }

}  // namespace presso

// The GPT-2 family (modeling_gpt2.py): learned positions (wte + wpe), pre-LN blocks, one fused
// Conv1D `c_attn` producing [q; k; v], gelu_new MLP, lm_head tied to wte. Conv1D weights are
// stored [in, out] and transposed on load.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lib/model/config_reader.h"
#include "lib/model/family.h"
#include "lib/model/ops.h"

namespace presso {
namespace {

void parse_gpt2(ConfigReader& r, ModelConfig& c) {
  c.hidden_size = r.positive("n_embd", r.required_int("n_embd"));
  c.num_layers = r.positive("n_layer", r.required_int("n_layer"));
  c.num_heads = r.positive("n_head", r.required_int("n_head"));
  c.num_kv_heads = c.num_heads;
  c.vocab_size = r.positive("vocab_size", r.required_int("vocab_size"));
  if (c.num_heads > 0 && c.hidden_size % c.num_heads != 0) {
    r.problem("n_head", fmt::format("{} does not divide n_embd {}", c.num_heads, c.hidden_size));
  } else if (c.num_heads > 0) {
    c.head_dim = c.hidden_size / c.num_heads;
  }
  // GPT2MLP: inner_dim = n_inner if not None else 4 * hidden_size.
  c.intermediate_size =
      r.has("n_inner") ? r.positive("n_inner", r.int_or("n_inner", 0)) : 4 * c.hidden_size;
  c.max_position_embeddings = r.positive("n_positions", r.int_or("n_positions", 1024));
  c.norm_eps = r.non_negative("layer_norm_epsilon", r.number_or("layer_norm_epsilon", 1e-5));
  c.activation = parse_activation(r, "activation_function", "gelu_new");
  c.scale_attn_weights = r.bool_or("scale_attn_weights", true);
  c.scale_attn_by_inverse_layer_idx = r.bool_or("scale_attn_by_inverse_layer_idx", false);
  // reorder_and_upcast_attn only changes where fp16 inputs are upcast; in fp32 it is the same
  // computation, so it is read (and type-checked) but changes nothing here.
  r.bool_or("reorder_and_upcast_attn", false);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", true);
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.sliding_windows.assign(static_cast<size_t>(std::max<int64_t>(c.num_layers, 0)), 0);
}

// Input: ln_1's output; output: c_proj's.
torch::Tensor gpt2_attention(const BlockContext& ctx, const DecoderBlock& b, const torch::Tensor& h,
                             const LinearHook* hook) {
  const ModelConfig& c = ctx.config;
  const int64_t batch = h.size(0), seq = h.size(1);
  auto qkv = run_linear(b.linear("attn.c_attn"), h, hook).split(c.hidden_size, -1);
  auto heads = [&](const torch::Tensor& t) {
    return t.view({batch, seq, c.num_heads, c.head_dim}).transpose(1, 2);
  };
  double scale = c.scale_attn_weights ? 1.0 / std::sqrt(c.head_dim) : 1.0;
  if (c.scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(b.index + 1);
  const auto& mask = ctx.cache.mask(seq, 0, h.device());
  auto attn = causal_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]), mask, scale, 0);
  return run_linear(b.linear("attn.c_proj"), attn, hook);
}

torch::Tensor gpt2_mlp(const BlockContext& ctx, const DecoderBlock& b, const torch::Tensor& h,
                       const LinearHook* hook) {
  auto a = activate(run_linear(b.linear("mlp.c_fc"), h, hook), ctx.config.activation);
  return run_linear(b.linear("mlp.c_proj"), a, hook);
}

torch::Tensor gpt2_block(const BlockContext& ctx, const DecoderBlock& b,
                         const torch::Tensor& hidden, const LinearHook* hook) {
  const ModelConfig& c = ctx.config;
  auto h = layer_norm(hidden, b.norm("ln_1"), c.norm_eps);
  auto x = hidden + gpt2_attention(ctx, b, h, hook);
  h = layer_norm(x, b.norm("ln_2"), c.norm_eps);
  return x + gpt2_mlp(ctx, b, h, hook);
}

FamilySpec describe_gpt2(const ModelConfig& c) {
  FamilySpec s;
  s.name = "gpt2";
  // GPT2LMHeadModel saves "transformer."; the original Hub upload (GPT2Model) has no prefix.
  s.prefix_candidates = {"transformer.", ""};
  s.embed_tokens = "wte.weight";
  s.positions = LearnedPositions{"wpe.weight", 0};
  s.positions_key = "n_positions";
  s.final_norm = NormSpec{"ln_f", NormKind::kLayer, c.hidden_size, true, true};
  s.tied_lm_head = c.tie_word_embeddings;
  s.block_prefix = "h.{}.";
  s.block_norms = {{"ln_1", NormKind::kLayer, c.hidden_size, true, true},
                   {"ln_2", NormKind::kLayer, c.hidden_size, true, true}};
  const int64_t h = c.hidden_size;
  s.block_linears = {
      {"attn.c_attn", 3 * h, h, true, /*conv1d=*/true, /*fused_qkv=*/true},
      {"attn.c_proj", h, h, true, true},
      {"mlp.c_fc", c.intermediate_size, h, true, true},
      {"mlp.c_proj", h, c.intermediate_size, true, true},
  };
  s.scale_groups = {{"ln_1", {"attn.c_attn"}}, {"ln_2", {"mlp.c_fc"}}};
  s.sequential_groups = {{"attn.c_attn"}, {"attn.c_proj"}, {"mlp.c_fc"}, {"mlp.c_proj"}};
  s.modules = {{"attn", {"attn.c_attn", "attn.c_proj"}, gpt2_attention},
               {"mlp", {"mlp.c_fc", "mlp.c_proj"}, gpt2_mlp}};
  s.forward = gpt2_block;
  return s;
}

}  // namespace

FamilyEntry gpt2_family() { return {"gpt2", {"gpt2"}, parse_gpt2, describe_gpt2}; }

}  // namespace presso

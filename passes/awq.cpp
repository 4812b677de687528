// AWQ (Lin et al., 2023), ported from the original (mit-han-lab/llm-awq, awq/quantize/
// pre_quant.py run_awq, auto_scale.py, auto_clip.py at d6e797a). For each scale group of the
// family (a norm or linear feeding linears that share an input) it searches a per-channel scale
// that makes the group's parent module output closest to the float one when the group's weights
// are quantized with the scheme of the quantizer that follows, and folds it into the producer, so
// the float model is unchanged. Then, as the original's auto_clip, it clamps each linear's weight
// groups (q/k excepted) to the range whose quantized outputs are closest. Weights stay float; a
// following rtn or gptq quantizes them. The math lives in lib/quant/awq.h.
#include "lib/quant/awq.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "lib/common/errors.h"
#include "lib/recipe/llmc_modifiers.h"
#include "lib/recipe/option_groups.h"
#include "lib/recipe/targets.h"
#include "passes/registry.h"

namespace presso {
namespace {

// auto_clip_layer looks at this many tokens, evenly strided.
constexpr int64_t kClipTokens = 512;

// Every calibration batch's input of one linear, kept for the searches.
class InputCapture : public InputObserver {
 public:
  void observe(const torch::Tensor& input) override { batches.push_back(input.clone()); }
  // [tokens, in]
  torch::Tensor tokens() const {
    std::vector<torch::Tensor> flat;
    for (const auto& batch : batches) flat.push_back(batch.reshape({-1, batch.size(-1)}));
    return torch::cat(flat, 0);
  }
  std::vector<torch::Tensor> batches;  // [B, T, in] each
};

// A family scale group of one block, with the module whose output judges its scale.
struct ResolvedGroup {
  ScaleGroup group;     // relative names
  std::string inspect;  // a module of the family, or the single consumer itself
};

bool contains(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

class AwqPass : public Pass {
 public:
  explicit AwqPass(const PassOptions& options)
      : scheme_(scheme_from_options(options)),
        mse_(options.get_bool("mse")),
        weighted_clip_(options.get_bool("weighted_mse")),
        duo_(options.get_string("duo_scaling")),
        n_grid_(static_cast<int>(options.get_int("n_grid"))),
        clip_(options.get_bool("clip")),
        mappings_(options.get_mappings("mappings")) {}

  bool needs_calibration() const override { return true; }
  // Each searched module's inputs and reference outputs over every window (about ten hidden
  // states' worth on the fixture models, measured), and one module run per grid point and form.
  Cost dry_run_cost() const override {
    const int forms = (duo_ != "false") + (duo_ != "true");
    return {10.0, static_cast<double>(n_grid_ * forms)};
  }

  void run(PassContext& context) override {
    const std::string& prefix = context.block().prefix;
    const std::vector<ResolvedGroup> groups = resolve_groups(context);
    // Clip factors are found before any clamp, on the float weights as scaled so far (the
    // original searches all clips after all scales, on inputs captured before either); as
    // factors of each group's max they stay right when a later fold rescales the rows.
    std::vector<std::pair<std::string, torch::Tensor>> clips;
    for (const auto& input_group : input_groups(context)) {
      std::vector<const ResolvedGroup*> scaled;
      for (const auto& group : groups) {
        if (contains(input_group, prefix + group.group.consumers.front())) scaled.push_back(&group);
      }
      std::vector<std::string> clipped;
      for (const auto& name : input_group) {
        if (clip_ && clippable(context, name)) clipped.push_back(name);
      }
      if (scaled.empty() && clipped.empty()) continue;

      InputCapture capture;
      context.observe({{input_group.front(), &capture}});
      for (const ResolvedGroup* group : scaled) {
        const torch::Tensor s = search_scale(context, *group, capture.batches);
        context.fold_scale(group->group.producer, group->group.consumers, s);
        for (auto& batch : capture.batches) batch.div_(s.to(batch.device()));
      }
      if (clipped.empty()) continue;
      const torch::Tensor x = capture.tokens();
      capture.batches.clear();
      AwqClipSearch search;
      const torch::Tensor sample = awq_clip_sample(x, kClipTokens);
      if (weighted_clip_) search.column_weight = x.pow(2).mean(0);
      for (const auto& name : clipped) {
        LinearState& state = context.state(name);
        clips.emplace_back(name, awq_clip_factors(state.linear->weight, sample, scheme_,
                                                  context.grid_options(name), search));
      }
    }
    for (const auto& [name, factors] : clips) {
      LinearState& state = context.state(name);
      state.linear->weight.copy_(awq_apply_clip(state.linear->weight, factors, scheme_.group_size));
      state.metrics["awq_clip_mean"] = factors.mean().item<double>();
    }
  }

 private:
  // The family's scale groups, or those the `mappings` name (each must be one of the family's,
  // where a fold is known to be exact), whose consumers the pass all targets.
  std::vector<ResolvedGroup> resolve_groups(PassContext& context) const {
    const FamilySpec& family = context.family();
    const DecoderBlock& block = context.block();
    std::vector<ScaleGroup> chosen;
    if (mappings_.empty()) {
      chosen = family.scale_groups;
    } else {
      for (const auto& mapping : mappings_) {
        const ScaleGroup* match = matching_group(family, block, mapping);
        if (match) chosen.push_back(*match);
      }
    }
    std::vector<ResolvedGroup> resolved;
    for (const auto& group : chosen) {
      bool targeted = true;
      for (const auto& consumer : group.consumers) {
        targeted = targeted && contains(context.targets(), block.prefix + consumer);
      }
      if (targeted) resolved.push_back({group, inspected_module(family, group)});
    }
    return resolved;
  }

  // The family's group that `mapping` names in this block; nullptr when its smooth layer is not
  // in the block. UserError for a mapping that names something else.
  static const ScaleGroup* matching_group(const FamilySpec& family, const DecoderBlock& block,
                                          const LayerMapping& mapping) {
    const TargetPattern smooth(mapping.smooth_layer);
    std::vector<std::string> producers;
    for (const auto& norm : block.norms) {
      if (smooth.matches(norm.name)) producers.push_back(norm.name.substr(block.prefix.size()));
    }
    for (const auto& linear : block.linears) {
      if (smooth.matches(linear.name)) producers.push_back(linear.name.substr(block.prefix.size()));
    }
    if (producers.empty()) return nullptr;
    std::vector<std::string> consumers;
    for (const auto& linear : block.linears) {
      for (const auto& pattern : mapping.balance_layers) {
        if (TargetPattern(pattern).matches(linear.name)) {
          consumers.push_back(linear.name.substr(block.prefix.size()));
          break;
        }
      }
    }
    for (const auto& group : family.scale_groups) {
      if (producers.size() != 1 || group.producer != producers.front()) continue;
      std::vector<std::string> a = group.consumers, b = consumers;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (a == b) return &group;
    }
    std::vector<std::string> valid;
    for (const auto& group : family.scale_groups) {
      valid.push_back(fmt::format("{} -> [{}]", group.producer, fmt::join(group.consumers, ", ")));
    }
    fail_user(
        "awq: mapping '{}' -> [{}] resolves in block {} to [{}] -> [{}], which is not a scale "
        "group of the {} family, where a scale folds exactly (valid: {})",
        mapping.smooth_layer, fmt::join(mapping.balance_layers, ", "), block.index,
        fmt::join(producers, ", "), fmt::join(consumers, ", "), family.name,
        fmt::join(valid, "; "));
  }

  // The lowest common ancestor of the consumers, as llm-compressor resolves an AWQ mapping's
  // parent and as llm-awq passes module2inspect: the family module holding them all when there
  // are several (q/k/v: self_attn, gate/up: mlp), else the consumer itself (v -> o: o_proj,
  // OPT's final_layer_norm -> fc1: fc1).
  static std::string inspected_module(const FamilySpec& family, const ScaleGroup& group) {
    if (group.consumers.size() == 1) return group.consumers.front();
    for (const auto& module : family.modules) {
      bool holds_all = true;
      for (const auto& consumer : group.consumers) {
        holds_all = holds_all && contains(module.linears, consumer);
      }
      if (holds_all) return module.name;
    }
    fail_internal("family {}: no module holds the scale group of '{}'", family.name,
                  group.producer);
  }

  // auto_clip_block skips the linears whose outputs meet in q·kᵀ ("due to qk bmm, it is hard to
  // clip precisely"): names with q_, k_, query, key, or a fused q/k/v.
  static bool clippable(PassContext& context, const std::string& name) {
    const std::string relative = name.substr(context.block().prefix.size());
    for (const char* part : {"q_", "k_", "query", "key", "qkv"}) {
      if (relative.find(part) != std::string::npos) return false;
    }
    for (const auto& spec : context.family().block_linears) {
      if (spec.name == relative && spec.fused_qkv) return false;
    }
    return true;
  }

  // _search_module_scale: the scale whose quantized consumers change the inspected module's
  // output least (mean squared error over every calibration token and output channel).
  torch::Tensor search_scale(PassContext& context, const ResolvedGroup& group,
                             const std::vector<torch::Tensor>& inputs) {
    DecoderBlock& block = context.block();
    std::vector<Linear*> linears;
    std::vector<torch::Tensor> originals;
    std::vector<GridOptions> grids;
    for (const auto& consumer : group.group.consumers) {
      Linear& linear = block.linear(consumer);
      linears.push_back(&linear);
      originals.push_back(linear.weight.clone());
      GridOptions grid = context.grid_options(linear.name);
      if (mse_) grid.mse = MseSearch{};
      grids.push_back(grid);
    }
    torch::Tensor abs_sum;
    int64_t tokens = 0;
    std::vector<torch::Tensor> reference;
    for (const auto& x : inputs) {
      const torch::Tensor sum = x.abs().reshape({-1, x.size(-1)}).sum(0);
      abs_sum = abs_sum.defined() ? abs_sum + sum : sum;
      tokens += x.numel() / x.size(-1);
      reference.push_back(context.run_module(group.inspect, x));
    }
    const torch::Tensor x_mean = abs_sum / static_cast<double>(tokens);
    const torch::Tensor w_mean = awq_weight_magnitude(torch::cat(originals, 0), scheme_.group_size);

    std::vector<bool> forms;
    if (duo_ != "false") forms.push_back(true);
    if (duo_ != "true") forms.push_back(false);
    double best_loss = std::numeric_limits<double>::infinity();
    double best_ratio = -1;
    bool best_duo = false;
    torch::Tensor best;
    for (bool duo : forms) {
      for (int i = 0; i < n_grid_; ++i) {
        const double ratio = static_cast<double>(i) / n_grid_;
        const torch::Tensor s = awq_candidate_scale(x_mean, w_mean, ratio, duo);
        for (size_t l = 0; l < linears.size(); ++l) {
          linears[l]->weight.copy_(awq_scaled_quantized(originals[l], s, scheme_, grids[l]));
        }
        double squared = 0;
        int64_t count = 0;
        for (size_t b = 0; b < inputs.size(); ++b) {
          const torch::Tensor out = context.run_module(group.inspect, inputs[b]);
          squared += (out - reference[b]).pow(2).sum().item<double>();
          count += out.numel();
        }
        const double loss = squared / static_cast<double>(count);
        if (loss < best_loss) {
          best_loss = loss;
          best_ratio = ratio;
          best_duo = duo;
          best = s;
        }
      }
    }
    for (size_t l = 0; l < linears.size(); ++l) linears[l]->weight.copy_(originals[l]);
    if (!best.defined()) {
      fail_user(
          "awq: the scale search of '{}' found no finite output error (the calibration "
          "inputs or weights hold NaN or infinite values)",
          block.prefix + group.group.producer);
    }
    for (const auto& consumer : group.group.consumers) {
      LinearState& state = context.state(block.prefix + consumer);
      state.metrics["awq_ratio"] = best_ratio;
      state.metrics["awq_loss"] = best_loss;
      if (forms.size() > 1) state.metrics["awq_duo_scaling"] = best_duo ? 1 : 0;
    }
    return best;
  }

  QuantScheme scheme_;
  bool mse_;
  bool weighted_clip_;
  std::string duo_;
  int n_grid_;
  bool clip_;
  std::vector<LayerMapping> mappings_;
};

PassSchema awq_schema() {
  PassSchema schema;
  schema.name = "awq";
  schema.summary =
      "AWQ: activation-aware per-channel scales folded into the producers, and weight clipping; "
      "weights stay float for a following rtn or gptq";
  schema.options =
      join_options({target_options(), quant_options(), awq_options(), importance_options()});
  schema.shape_check = check_quant_shape;
  schema.plan_keys = {"bits", "group_size", "symmetric", "duo_scaling", "clip"};
  schema.modifiers = {awq_modifier_translation()};
  return schema;
}

}  // namespace

PassFactory awq_pass() {
  return {awq_schema(), [](const PassOptions& options) -> std::unique_ptr<Pass> {
            return std::make_unique<AwqPass>(options);
          }};
}

}  // namespace presso

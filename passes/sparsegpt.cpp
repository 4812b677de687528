// SparseGPT (Frantar & Alistarh, 2023): prunes each targeted linear with the OBS sweep, choosing
// the mask by the saliency w²/[H⁻¹]²_jj as it goes and updating the kept weights to compensate;
// with `bits` it quantizes them in the same sweep (the original's `wbits`). The mask choice is in
// lib/sparse/sparsegpt.h, the sweep in lib/quant/gptq.h. As the original (and llm-compressor's
// SparseGPTModifier), every linear of a block gets its Hessian from one run of the dense block;
// true_sequential instead prunes the block's linears group by group on the inputs that the
// already-pruned groups produce, as the GPTQ pass does.
#include <fmt/format.h>

#include "lib/common/errors.h"
#include "lib/recipe/llmc_modifiers.h"
#include "lib/recipe/option_groups.h"
#include "lib/sparse/sparse.h"
#include "passes/registry.h"

namespace presso {
namespace {

// The keys of joint quantization, which only mean something with `bits`.
const std::vector<std::string> kJointKeys = {"group_size", "symmetric", "mse"};

class SparseGptPass : public Pass {
 public:
  explicit SparseGptPass(const PassOptions& options)
      : pattern_(parse_sparsity_pattern(options.get_string("pattern"))),
        mse_(options.has("mse") && options.get_bool("mse")),
        true_sequential_(options.get_bool("true_sequential")) {
    options_.damp = options.get_float("damp");
    options_.block_size = options.get_int("block_size");
    options_.pruning = sparsegpt_pruning(pruned_fraction(options), pattern_);
    options_.quantize = options.has("bits");
    if (options_.quantize) {
      // GPTQ's defaults for what is not given.
      options_.scheme.bits = static_cast<int>(options.get_int("bits"));
      options_.scheme.group_size =
          options.has("group_size") ? static_cast<int>(options.get_int("group_size")) : 128;
      options_.scheme.symmetric = !options.has("symmetric") || options.get_bool("symmetric");
    }
  }

  bool true_sequential() const override { return true_sequential_; }

  StatsRequest wants() const override {
    StatsRequest request;
    request.hessian = true;
    return request;
  }

  void plan(LinearPlan& plan) const override {
    plan.sparsity = pattern_;
    if (options_.quantize) plan.scheme = options_.scheme;
  }

  void run(PassContext& context) override {
    for_each_input_group(context, true_sequential_, wants(),
                         [&](const auto& group) { prune_group(context, group); });
  }

 private:
  // One factorization of the group's shared Hessian serves all its linears.
  void prune_group(PassContext& context, const std::vector<std::string>& group) {
    const GptqHessian hessian = prepare_gptq_hessian(context.statistics(group.front()).hessian(),
                                                     options_, context.device(), group.front());
    for (const auto& name : group) {
      LinearState& state = context.state(name);
      if (state.mask || state.quant) {
        fail_user("sparsegpt: '{}' is already {} by an earlier pass; SparseGPT chooses its own "
                  "mask from the dense weight, so it must come first",
                  name, state.quant ? "quantized" : "pruned");
      }
      GptqOptions options = options_;
      options.grid = context.grid_options(name);
      if (mse_) options.grid.mse = gptq_mse_search();
      GptqResult result = gptq_sweep(state.linear->weight, hessian, options, std::nullopt, name);
      state.metrics["sparsegpt_loss"] = result.loss;
      const std::string note = damping_note(options_.damp, hessian);
      if (!note.empty()) state.notes.push_back(note);
      // The kept weights as the sweep updated them, then the mask (which zeroes the rest).
      state.linear->weight = result.dequantized.to(state.linear->weight.device());
      set_mask(state, result.mask);
      if (options_.quantize) set_quantized(state, std::move(result.weight));
    }
  }

  SparsityPattern pattern_;
  GptqOptions options_;
  bool mse_;
  bool true_sequential_;
};

// quant_options() without defaults: absent `bits` means pruning alone.
std::vector<OptionSpec> joint_quant_options() {
  std::vector<OptionSpec> options = quant_options();
  for (auto& option : options) {
    option.default_value = std::nullopt;
    if (option.key == "bits") {
      option.doc = "quantize the kept weights to this many bits in the same sweep (absent: prune "
                   "only)";
    } else {
      option.doc += " (with bits; GPTQ's default)";
    }
  }
  return options;
}

PassSchema sparsegpt_schema() {
  PassSchema schema;
  schema.name = "sparsegpt";
  schema.summary =
      "SparseGPT: prune by OBS saliency, updating the kept weights; optionally quantize them in "
      "the same sweep";
  schema.options = join_options(
      {target_options(), pruning_options(), obs_options(), joint_quant_options(),
       {pruning_sequential_option()}});
  schema.cross_check = [](const PassOptions& options) {
    std::vector<OptionProblem> problems = check_pruning(options);
    if (!options.has("bits")) {
      for (const auto& key : kJointKeys) {
        if (options.has(key)) {
          problems.push_back({key, key + " sets the joint quantization, which needs bits"});
        }
      }
    }
    const SparsityPattern pattern = parse_sparsity_pattern(options.get_string("pattern"));
    if (pattern.structured() && options.get_int("block_size") % pattern.m != 0) {
      problems.push_back(
          {"block_size", fmt::format("block_size {} must be a multiple of {} (pattern {}): an N:M "
                                     "group may not straddle two blocks",
                                     options.get_int("block_size"), pattern.m,
                                     options.get_string("pattern"))});
    }
    return problems;
  };
  schema.shape_check = [](const PassOptions& options, const LinearInfo& linear) {
    std::vector<std::string> problems = check_pruning_shape(options, linear);
    if (options.has("bits") && options.has("group_size")) {
      for (auto& problem : check_quant_shape(options, linear)) problems.push_back(problem);
    }
    return problems;
  };
  schema.plan_keys = {"sparsity", "pattern", "bits", "group_size", "symmetric"};
  schema.modifiers = {sparsegpt_modifier_translation()};
  return schema;
}

}  // namespace

PassFactory sparsegpt_pass() {
  return {sparsegpt_schema(), [](const PassOptions& options) -> std::unique_ptr<Pass> {
            return std::make_unique<SparseGptPass>(options);
          }};
}

}  // namespace presso

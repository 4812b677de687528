// GPTQ (Frantar et al., 2022): quantizes each targeted linear column by column, feeding every
// column's rounding error forward through the inverse Hessian of the layer's calibration inputs.
// The math lives in lib/quant/gptq.h; this pass orders the linears of a block and feeds them
// their statistics. With true_sequential (the original's `--true-sequential` for Llama) the
// block's linears go in forward order, group by group (q/k/v, o, gate/up, down), each group on
// the inputs that the already-quantized groups produce.
#include "lib/quant/gptq.h"

#include "lib/recipe/llmc_modifiers.h"
#include "lib/recipe/option_groups.h"
#include "passes/registry.h"

namespace presso {
namespace {

class GptqPass : public Pass {
 public:
  explicit GptqPass(const PassOptions& options)
      : weighted_(options.get_bool("weighted_mse")),
        mse_(options.get_bool("mse") || weighted_),
        true_sequential_(options.get_bool("true_sequential")) {
    options_.scheme = scheme_from_options(options);
    options_.damp = options.get_float("damp");
    options_.block_size = options.get_int("block_size");
    options_.act_order = options.get_bool("act_order");
    // Unset, static groups go with act-order (see act_order_options).
    options_.static_groups = options.has("static_groups") ? options.get_bool("static_groups")
                                                          : options_.act_order;
  }

  bool true_sequential() const override { return true_sequential_; }

  StatsRequest wants() const override {
    StatsRequest request;
    request.hessian = true;
    request.sq_norm = weighted_;
    return request;
  }

  void plan(LinearPlan& plan) const override {
    plan.scheme = options_.scheme;
    // Act-order with groups found during the sweep stores each column's group.
    plan.g_idx = options_.act_order && !options_.static_groups && options_.scheme.group_size > 0;
  }

  void run(PassContext& context) override {
    for_each_input_group(context, true_sequential_, wants(),
                         [&](const auto& group) { quantize_group(context, group); });
  }

 private:
  // The linears of one group read the same input, so one factorization of its Hessian serves
  // them all.
  void quantize_group(PassContext& context, const std::vector<std::string>& group) {
    const GptqHessian hessian = prepare_gptq_hessian(context.statistics(group.front()).hessian(),
                                                     options_, context.device(), group.front());
    for (const auto& name : group) {
      GptqOptions options = options_;
      options.grid = context.grid_options(name);
      if (mse_) options.grid.mse = gptq_mse_search();
      if (weighted_) options.grid.mse_column_weight = context.statistics(name).mean_square();
      LinearState& state = context.state(name);
      GptqResult result = gptq_sweep(state.linear->weight, hessian, options, state.mask, name);
      state.metrics["gptq_loss"] = result.loss;
      const std::string note = damping_note(options_.damp, hessian);
      if (!note.empty()) state.notes.push_back(note);
      set_quantized(state, std::move(result.weight));
    }
  }

  GptqOptions options_;
  bool weighted_;
  bool mse_;
  bool true_sequential_;
};

PassSchema gptq_schema() {
  PassSchema schema;
  schema.name = "gptq";
  schema.summary = "GPTQ: quantize columns in order, updating the rest from the inverse Hessian";
  schema.options =
      join_options({target_options(), quant_options(), obs_options(), act_order_options(),
                    importance_options()});
  schema.shape_check = check_quant_shape;
  schema.plan_keys = {"bits", "group_size", "symmetric", "act_order"};
  schema.modifiers = {gptq_modifier_translation()};
  return schema;
}

}  // namespace

PassFactory gptq_pass() {
  return {gptq_schema(), [](const PassOptions& options) -> std::unique_ptr<Pass> {
            return std::make_unique<GptqPass>(options);
          }};
}

}  // namespace presso

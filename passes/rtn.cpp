// Round-to-nearest weight quantization: each weight to the nearest point of its group's min/max
// grid (or the MSE-searched one, optionally weighted by the inputs), no calibration unless weighted. The baseline every other quantizer must beat,
// and the scheme of llm-compressor's QuantizationModifier.
#include "lib/quant/quantize.h"
#include "lib/recipe/llmc_modifiers.h"
#include "lib/recipe/option_groups.h"
#include "passes/registry.h"

namespace presso {
namespace {

class RtnPass : public Pass {
 public:
  explicit RtnPass(const PassOptions& options)
      : scheme_(scheme_from_options(options)),
        weighted_(options.get_bool("weighted_mse")),
        mse_(options.get_bool("mse") || weighted_) {}

  StatsRequest wants() const override {
    StatsRequest request;
    request.sq_norm = weighted_;
    return request;
  }

  void run(PassContext& context) override {
    for (const auto& name : context.targets()) {
      GridOptions grid = context.grid_options(name);
      if (mse_) grid.mse = MseSearch{};
      if (weighted_) grid.mse_column_weight = context.statistics(name).mean_square();
      LinearState& state = context.state(name);
      set_quantized(state, quantize_rtn(state.linear->weight, scheme_, grid, name));
    }
  }

  void plan(LinearPlan& plan) const override {
    plan.scheme = scheme_;
    plan.g_idx = false;
  }

 private:
  QuantScheme scheme_;
  bool weighted_;
  bool mse_;
};

PassSchema rtn_schema() {
  PassSchema schema;
  schema.name = "rtn";
  schema.summary = "round-to-nearest weight quantization, no calibration";
  schema.options = join_options({target_options(), quant_options(), importance_options()});
  schema.shape_check = check_quant_shape;
  schema.plan_keys = {"bits", "group_size", "symmetric"};
  schema.modifiers = {quantization_modifier_translation()};
  return schema;
}

}  // namespace

PassFactory rtn_pass() {
  return {rtn_schema(), [](const PassOptions& options) -> std::unique_ptr<Pass> {
            return std::make_unique<RtnPass>(options);
          }};
}

}  // namespace presso

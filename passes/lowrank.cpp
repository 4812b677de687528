// Low-rank error compensation: after the recipe's earlier passes have compressed a linear, fit a
// residual path B·A of rank r to its error ΔW = W_original − W_compressed, and leave it on the
// linear (run by the block re-run, written as a PEFT LoRA adapter). `method: svd` truncates the
// SVD of ΔW; `method: eora` (EoRA, Liu et al. 2024) truncates it in the eigenspace of the inputs'
// XᵀX scaled by √Λ, so the rank goes where the activations are. The math is in lib/lowrank.
#include "lib/lowrank/lowrank.h"

#include <fmt/format.h>

#include "lib/recipe/option_groups.h"
#include "passes/registry.h"

namespace presso {
namespace {

class LowRankPass : public Pass {
 public:
  explicit LowRankPass(const PassOptions& options) {
    options_.method =
        options.get_string("method") == "svd" ? LowRankMethod::kSvd : LowRankMethod::kEora;
    options_.rank = options.get_int("rank");
    options_.energy = options.get_float("energy");
    options_.max_rank = options.get_int("max_rank");
    options_.adapter_bits = static_cast<int>(options.get_int("adapter_bits"));
  }

  // EoRA weighs by XᵀX, the statistic GPTQ gathers too: one accumulation serves both.
  StatsRequest wants() const override {
    StatsRequest request;
    request.hessian = options_.method == LowRankMethod::kEora;
    return request;
  }

  void plan(LinearPlan& plan) const override { plan.lowrank = true; }

  void run(PassContext& context) override {
    for (const auto& name : context.targets()) {
      LinearState& state = context.state(name);
      const torch::Tensor delta = context.original_weight(name) - state.linear->weight;
      std::optional<torch::Tensor> xtx;
      if (options_.method == LowRankMethod::kEora) xtx = context.statistics(name).xtx();
      const LowRankFit fit = fit_lowrank(delta, xtx, options_, name);
      state.metrics["lowrank_energy_kept"] = fit.captured;
      if (fit.rank == 0) continue;  // nothing to compensate
      set_lowrank(state, LowRankPair{fit.a, fit.b});
    }
  }

 private:
  LowRankOptions options_;
};

PassSchema lowrank_schema() {
  PassSchema schema;
  schema.name = "lowrank";
  schema.summary = "low-rank compensation of the earlier passes' error, written as a LoRA adapter";
  OptionSpec bits = int_option("adapter_bits", 0, 0, 8,
                               "0: factors in fp32; 2-8: A and B rounded to that many bits");
  bits.check = [](const OptionValue& value) -> std::string {
    return std::get<int64_t>(value) == 1 ? "1 bit is not a grid (use 0, or 2 to 8)" : "";
  };
  schema.options = join_options(
      {target_options(),
       {enum_option("method", "eora", {"eora", "svd"},
                    "eora: SVD in the inputs' eigenspace (needs calibration); svd: of the error "
                    "alone"),
        int_option("rank", 16, 1, std::nullopt, "rank of each path (unless energy is set)"),
        float_option("energy", 0.0, 0.0, 1.0,
                     "0: fixed rank; else the smallest rank keeping this share of the error's "
                     "energy, capped by max_rank"),
        int_option("max_rank", 0, 0, std::nullopt, "cap of an energy-chosen rank; 0: none"),
        bits}});
  schema.plan_keys = {"method", "rank", "energy"};
  return schema;
}

}  // namespace

PassFactory lowrank_pass() {
  return {lowrank_schema(), [](const PassOptions& options) -> std::unique_ptr<Pass> {
            return std::make_unique<LowRankPass>(options);
          }};
}

}  // namespace presso

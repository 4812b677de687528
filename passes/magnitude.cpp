// Magnitude pruning: the smallest |W| of each targeted linear set to zero, no calibration. The
// comparison group is the whole linear (`scope: layer`, one threshold per linear as wanda's
// prune_magnitude), each output row (`row`), or every targeted linear of the model at once
// (`global`, Gupta et al. 2022, with a per-layer floor so no layer collapses); an N:M `pattern`
// prunes N of every M consecutive inputs of each row instead. The baseline Wanda and SparseGPT
// must beat. The mask kernels live in lib/sparse.
#include <map>

#include "lib/recipe/llmc_modifiers.h"
#include "lib/recipe/option_groups.h"
#include "lib/sparse/sparse.h"
#include "passes/registry.h"

namespace presso {
namespace {

enum class Scope { kLayer, kRow, kGlobal };

Scope scope_from_name(const std::string& name) {
  if (name == "row") return Scope::kRow;
  if (name == "global") return Scope::kGlobal;
  return Scope::kLayer;
}

class MagnitudePass : public Pass {
 public:
  explicit MagnitudePass(const PassOptions& options)
      : pattern_(parse_sparsity_pattern(options.get_string("pattern"))),
        sparsity_(pruned_fraction(options)),
        scope_(scope_from_name(options.get_string("scope"))) {}

  bool needs_calibration() const override { return false; }

  void plan(LinearPlan& plan) const override { plan.sparsity = pattern_; }

  // Global scope: how many weights each linear loses, decided once over the whole model.
  void prepare(const ModelView& model) override {
    if (scope_ != Scope::kGlobal || pattern_.structured()) return;
    const std::vector<std::string>& names = model.targets();
    const std::vector<int64_t> counts = global_magnitude_counts(
        names.size(), [&](size_t i) { return model.original_weight(names[i]); }, sparsity_,
        default_global_min_keep(sparsity_), names);
    for (size_t i = 0; i < names.size(); ++i) pruned_[names[i]] = counts[i];
  }

  void run(PassContext& context) override {
    for (const auto& name : context.targets()) {
      LinearState& state = context.state(name);
      const torch::Tensor& weight = state.linear->weight;
      torch::Tensor mask;
      if (scope_ == Scope::kGlobal && !pattern_.structured()) {
        // The linear's share of the global cut: its own lowest |W|, ties by position.
        mask = lowest_k_per_row(weight.abs().reshape({1, -1}), pruned_.at(name))
                   .view_as(weight)
                   .logical_not();
      } else {
        mask = magnitude_mask(weight, sparsity_,
                              scope_ == Scope::kRow ? MaskScope::kRow : MaskScope::kLayer, pattern_,
                              name);
      }
      set_mask(state, mask);
    }
  }

 private:
  SparsityPattern pattern_;
  double sparsity_;
  Scope scope_;
  std::map<std::string, int64_t> pruned_;  // global scope: weights each linear loses
};

PassSchema magnitude_schema() {
  PassSchema schema;
  schema.name = "magnitude";
  schema.summary = "magnitude pruning: zero the smallest |w|, no calibration";
  schema.options = join_options(
      {target_options(),
       pruning_options(),
       {enum_option("scope", "layer", {"layer", "row", "global"},
                    "where the smallest |w| are ranked: in each linear, in each output row, or "
                    "across all targeted linears (with a floor per linear)")}});
  schema.cross_check = [](const PassOptions& options) {
    std::vector<OptionProblem> problems = check_pruning(options);
    const std::string& scope = options.get_string("scope");
    if (parse_sparsity_pattern(options.get_string("pattern")).structured() && scope != "layer") {
      problems.push_back({"scope", "scope " + scope + " has no effect with an N:M pattern, whose " +
                                       "zeros are chosen within each group of M inputs; leave " +
                                       "scope out"});
    }
    return problems;
  };
  schema.shape_check = check_pruning_shape;
  schema.plan_keys = {"sparsity", "pattern", "scope"};
  schema.modifiers = {magnitude_modifier_translation()};
  return schema;
}

}  // namespace

PassFactory magnitude_pass() {
  return {magnitude_schema(), [](const PassOptions& options) -> std::unique_ptr<Pass> {
            return std::make_unique<MagnitudePass>(options);
          }};
}

}  // namespace presso

// Wanda (Sun et al. 2023; locuslab/wanda lib/prune.py prune_wanda): prunes the weights of lowest
// |W_ij|·‖X_j‖₂, compared within each output row (the paper's comparison group), or N of every
// M consecutive inputs of a row. No weight update. As in the original, every linear of a block
// takes its statistics from one run of the block on its (pruned-upstream) inputs; with
// true_sequential each input group (q/k/v, o, gate/up, down) is gathered again after the groups
// before it are pruned. With sparsity_profile owl (OWL, Yin et al. 2024, as llm-compressor's
// WandaPruningModifier offers it) each decoder block gets its own sparsity, decided in prepare()
// from one run of the dense model. The math lives in lib/sparse/wanda.h.
#include "lib/sparse/wanda.h"

#include <map>
#include <memory>

#include "lib/common/errors.h"
#include "lib/recipe/llmc_modifiers.h"
#include "lib/recipe/option_groups.h"
#include "lib/sparse/mask.h"
#include "passes/registry.h"

namespace presso {
namespace {

// OWL's activation statistic (llm-compressor sgpt_base.py _get_activations): the mean over
// calibration sequences of each input channel's per-sequence norm sqrt(Σ_tokens x_j²), which is
// not Wanda's sqrt(Σ_all tokens x_j²).
class SequenceNormObserver : public InputObserver {
 public:
  void observe(const torch::Tensor& input) override {
    // input: [B, T, in] -> per-sequence norms [B, in], summed over the batch.
    const torch::Tensor norms = input.to(torch::kFloat32).pow(2).sum(1).sqrt().sum(0);
    sum_ = sum_.defined() ? sum_ + norms : norms;
    sequences_ += input.size(0);
  }
  torch::Tensor mean() const { return sum_ / static_cast<double>(sequences_); }

 private:
  torch::Tensor sum_;  // [in]
  int64_t sequences_ = 0;
};

class WandaPass : public Pass {
 public:
  explicit WandaPass(const PassOptions& options)
      : pattern_(parse_sparsity_pattern(options.get_string("pattern"))),
        sparsity_(pruned_fraction(options)),
        owl_(options.get_string("sparsity_profile") == "owl"),
        true_sequential_(options.get_bool("true_sequential")) {
    if (owl_) {
      owl_threshold_m_ = owl_threshold_m(options);
      owl_lambda_ = owl_lambda(options);
    }
  }

  bool true_sequential() const override { return true_sequential_; }

  StatsRequest wants() const override {
    StatsRequest request;
    request.sq_norm = true;
    return request;
  }

  void plan(LinearPlan& plan) const override { plan.sparsity = pattern_; }

  void prepare(const ModelView& model) override {
    if (owl_) decide_owl_sparsities(model);
  }

  void run(PassContext& context) override {
    for_each_input_group(context, true_sequential_, wants(), [&](const auto& group) {
      for (const auto& name : group) prune(context, name);
    });
  }

 private:
  void prune(PassContext& context, const std::string& name) {
    LinearState& state = context.state(name);
    const torch::Tensor scores =
        wanda_scores(state.linear->weight, context.statistics(name).sq_norm().sqrt(), name);
    double sparsity = sparsity_;
    if (owl_) {
      sparsity = block_sparsity_.at(context.block().index);
      state.metrics["owl_sparsity"] = sparsity;
    }
    set_mask(state, mask_from_scores(scores, sparsity, MaskScope::kRow, pattern_, name));
  }

  // OWL: one dense run for every target's activations, then each block's outlier ratio over all
  // its targets' |W|·act together, and from the ratios the blocks' sparsities.
  void decide_owl_sparsities(const ModelView& model) {
    std::map<std::string, SequenceNormObserver> observers;
    ObserverMap observer_map;
    for (const auto& name : model.targets()) observer_map[name] = &observers[name];
    model.observe_dense(observer_map);

    std::map<int, std::vector<std::string>> by_block;
    for (const auto& name : model.targets()) by_block[model.block_of(name)].push_back(name);
    std::vector<double> ratios;
    for (const auto& [block, names] : by_block) {
      std::vector<torch::Tensor> scores;
      for (const auto& name : names) {
        scores.push_back(
            wanda_scores(model.original_weight(name), observers.at(name).mean(), name));
      }
      ratios.push_back(owl_outlier_ratio(scores, owl_threshold_m_));
    }
    const std::vector<double> sparsities = owl_layer_sparsities(ratios, sparsity_, owl_lambda_);
    size_t index = 0;
    for (const auto& entry : by_block) {
      const double sparsity = sparsities[index++];
      // check_owl bounds λ so that this cannot happen.
      if (!(sparsity >= 0 && sparsity < 1)) {
        fail_internal("OWL gave block {} the sparsity {}", entry.first, sparsity);
      }
      block_sparsity_[entry.first] = sparsity;
    }
  }

  SparsityPattern pattern_;
  double sparsity_;
  bool owl_;
  bool true_sequential_;
  double owl_threshold_m_ = 0;
  double owl_lambda_ = 0;
  std::map<int, double> block_sparsity_;  // OWL: by block index
};

PassSchema wanda_schema() {
  PassSchema schema;
  schema.name = "wanda";
  schema.summary = "Wanda: prune the lowest |w|·‖x‖ of each output row (or N:M), OWL optional";
  schema.options = join_options(
      {target_options(),
       pruning_options(),
       owl_options(),
       {pruning_sequential_option()}});
  schema.cross_check = [](const PassOptions& options) {
    std::vector<OptionProblem> problems = check_pruning(options);
    for (auto& problem : check_owl(options)) problems.push_back(std::move(problem));
    return problems;
  };
  schema.shape_check = check_pruning_shape;
  schema.plan_keys = {"sparsity", "pattern", "sparsity_profile"};
  schema.modifiers = {wanda_modifier_translation()};
  return schema;
}

}  // namespace

PassFactory wanda_pass() {
  return {wanda_schema(), [](const PassOptions& options) -> std::unique_ptr<Pass> {
            return std::make_unique<WandaPass>(options);
          }};
}

}  // namespace presso

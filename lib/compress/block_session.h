// One decoder block under compression: the states of its targeted linears, the statistics the
// passes asked for, the scales folded so far, and the PassContext each pass runs with. Internal
// to the driver.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lib/compress/activations.h"
#include "lib/compress/output_error.h"
#include "lib/compress/pass.h"

namespace presso {

class BlockSession : public PassContext {
 public:
  // `activations` may be null (no calibration data): then no statistics and no output errors.
  BlockSession(const Model& model, DecoderBlock& block, BlockActivations* activations);

  // A linear of the block that some pass targets, with the format's grid constraints for it; its
  // weight, as yet untouched, is kept for original_weight() as the checkpoint stores it
  // (`stored_dtype`), or in fp32 where that dtype would not hold it exactly.
  void add_linear(const LinearInfo& info, const GridOptions& grid, torch::ScalarType stored_dtype);
  // One run of the block gathering, for every pass i, requests[i] on the linears targets[i].
  void gather_statistics(const std::vector<std::vector<std::string>>& targets,
                         const std::vector<StatsRequest>& requests);
  void run_pass(Pass& pass, const std::vector<std::string>& targets);
  // Runs the compressed block over the activations, which become the next block's inputs, and
  // measures the output error of every linear a pass changed against its original weight.
  // Frees the statistics first.
  OutputErrorMeter advance_activations();
  const std::map<std::string, LinearState>& states() const { return states_; }

  // PassContext
  DecoderBlock& block() override { return block_; }
  const FamilySpec& family() const override { return model_.family(); }
  torch::Device device() const override { return model_.device(); }
  const std::vector<std::string>& targets() const override { return *targets_; }
  LinearState& state(const std::string& linear_name) override;
  GridOptions grid_options(const std::string& linear_name) const override;
  bool has_calibration() const override { return activations_ != nullptr; }
  LinearStatistics& statistics(const std::string& linear_name) override;
  void recollect(const std::vector<std::string>& linear_names,
                 const StatsRequest& request) override;
  int64_t calibration_batches() const override;
  torch::Tensor calibration_batch(int64_t index) const override;
  void observe(const ObserverMap& observers) override;
  torch::Tensor run_module(const std::string& module, const torch::Tensor& input,
                           const ObserverMap& observers) override;
  void fold_scale(const std::string& producer, const std::vector<std::string>& consumers,
                  const torch::Tensor& s) override;
  torch::Tensor original_weight(const std::string& linear_name) override;

 private:
  // A module's input per calibration batch as a statistics run saw it (llama's mlp: what gate/up
  // read), with copies of the weights that input was computed from (every norm, every linear
  // outside the module): while they are unchanged, a run that needs only linears of the module
  // (down_proj after gate/up in true-sequential order) starts there, not at the block's input.
  struct ModuleInputs {
    std::vector<torch::Tensor> batches;
    std::vector<torch::Tensor> upstream;
  };
  // A statistics run that stops once every `needed` input was seen, from a module's cached input
  // when one is still valid; otherwise from the block's input, then keeping (alone) the input of
  // the module holding every needed linear.
  void observe_needed(const LinearHook& hook, const std::vector<std::string>& needed);
  // The weights a module's input depends on, in a fixed order (undefined for absent ones).
  std::vector<torch::Tensor> upstream_weights(const ModuleSpec& module) const;
  bool holds_all(const ModuleSpec& module, const std::vector<std::string>& names) const;

  const BlockActivations& activations(const char* what) const;
  LinearHook hook_for(const ObserverMap& observers) const;
  // Whether a pass has left codes or a low-rank path on the linear (a scale cannot fold then).
  void check_foldable(const std::string& full_name, const char* role) const;

  const Model& model_;
  DecoderBlock& block_;
  BlockActivations* activations_;
  std::map<std::string, LinearState> states_;
  std::map<std::string, GridOptions> grids_;
  std::map<std::string, torch::Tensor> originals_;  // as loaded (add_linear)
  StatisticsCollector collector_;
  // Scales folded into each linear since it was loaded, so that its original weight can be read
  // in the block's current coordinates: columns multiplied by in_scales_, rows by out_scales_.
  std::map<std::string, torch::Tensor> in_scales_;
  std::map<std::string, torch::Tensor> out_scales_;
  const std::vector<std::string>* targets_ = nullptr;
  std::map<std::string, ModuleInputs> module_inputs_;  // by module name
};

}  // namespace presso

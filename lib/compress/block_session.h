// One decoder block under compression: the states of its targeted linears, the statistics the
// passes asked for, and the PassContext each pass runs with. Internal to the driver.
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

  // A linear of the block that some pass targets, with the format's grid constraints for it and
  // the dtype the checkpoint stores it in (which holds the original weight exactly, so the copy
  // kept for measuring output errors costs half as much for bf16 checkpoints).
  void add_linear(const LinearInfo& info, const GridOptions& grid, torch::ScalarType stored_dtype);
  // One run of the block gathering, for every pass i, requests[i] on the linears targets[i].
  void gather_statistics(const std::vector<std::vector<std::string>>& targets,
                         const std::vector<StatsRequest>& requests);
  void run_pass(Pass& pass, const std::vector<std::string>& targets);
  // Runs the compressed block over the activations, which become the next block's inputs, and
  // measures the output error of every linear a pass changed. Frees the statistics first.
  OutputErrorMeter advance_activations();
  const std::map<std::string, LinearState>& states() const { return states_; }

  // PassContext
  DecoderBlock& block() override { return block_; }
  const FamilySpec& family() const override { return model_.family(); }
  torch::Device device() const override { return model_.device(); }
  const std::vector<std::string>& targets() const override { return *targets_; }
  LinearState& state(const std::string& linear_name) override;
  LinearStatistics& statistics(const std::string& linear_name) override;
  GridOptions grid_options(const std::string& linear_name) const override;
  void recollect(const std::vector<std::string>& linear_names,
                 const StatsRequest& request) override;

 private:
  const Model& model_;
  DecoderBlock& block_;
  BlockActivations* activations_;
  std::map<std::string, LinearState> states_;
  std::map<std::string, GridOptions> grids_;
  std::map<std::string, torch::Tensor> originals_;  // weights before compression, stored dtype
  StatisticsCollector collector_;
  const std::vector<std::string>* targets_ = nullptr;
};

}  // namespace presso

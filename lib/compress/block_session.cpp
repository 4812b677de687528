#include "lib/compress/block_session.h"

#include <algorithm>

#include "lib/common/errors.h"

namespace presso {

BlockSession::BlockSession(const Model& model, DecoderBlock& block, BlockActivations* activations)
    : model_(model), block_(block), activations_(activations), collector_(model.device()) {}

void BlockSession::add_linear(const LinearInfo& info, const GridOptions& grid,
                              torch::ScalarType stored_dtype) {
  Linear* linear = block_.find_linear(info.name);
  if (!linear) fail_internal("block {} has no linear '{}'", block_.index, info.name);
  LinearState state;
  state.linear = linear;
  state.info = info;
  states_[info.name] = std::move(state);
  grids_[info.name] = grid;
  if (activations_) originals_[info.name] = linear->weight.to(stored_dtype, /*non_blocking=*/false, /*copy=*/true);
}

void BlockSession::gather_statistics(const std::vector<std::vector<std::string>>& targets,
                                     const std::vector<StatsRequest>& requests) {
  if (!activations_) return;
  bool any = false;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!requests[i].any()) continue;
    for (const auto& name : targets[i]) collector_.request(name, requests[i]);
    any = any || !targets[i].empty();
  }
  if (!any) return;
  LinearHook hook = collector_.as_hook();
  activations_->run(model_, block_, &hook, /*advance=*/false);
}

void BlockSession::run_pass(Pass& pass, const std::vector<std::string>& targets) {
  if (targets.empty()) return;
  targets_ = &targets;
  pass.run(*this);
  targets_ = nullptr;
}

OutputErrorMeter BlockSession::advance_activations() {
  collector_.clear();
  OutputErrorMeter meter;
  if (!activations_) return meter;
  for (auto& [name, original] : originals_) {
    const torch::Tensor& now = states_.at(name).linear->weight;
    if (!now.equal(original.to(now.scalar_type()))) meter.track(name, original, now);
  }
  originals_.clear();
  LinearHook hook = meter.as_hook();
  activations_->run(model_, block_, &hook, /*advance=*/true);
  return meter;
}

LinearState& BlockSession::state(const std::string& linear_name) {
  if (!targets_ || std::find(targets_->begin(), targets_->end(), linear_name) == targets_->end()) {
    fail_internal("a pass asked for linear '{}', which it does not target in block {}",
                  linear_name, block_.index);
  }
  return states_.at(linear_name);
}

LinearStatistics& BlockSession::statistics(const std::string& linear_name) {
  if (!collector_.contains(linear_name)) {
    fail_internal("a pass asked for statistics of '{}' that it did not declare", linear_name);
  }
  return collector_.at(linear_name);
}

GridOptions BlockSession::grid_options(const std::string& linear_name) const {
  auto it = grids_.find(linear_name);
  if (it == grids_.end()) fail_internal("no grid options for linear '{}'", linear_name);
  return it->second;
}

void BlockSession::recollect(const std::vector<std::string>& linear_names,
                             const StatsRequest& request) {
  if (!activations_) fail_internal("recollect without calibration activations");
  // A collector of its own, so the statistics of the other linears are not added to twice.
  StatisticsCollector fresh(model_.device());
  for (const auto& name : linear_names) fresh.request(name, request);
  LinearHook hook = fresh.as_hook();
  activations_->run(model_, block_, &hook, /*advance=*/false);
  for (const auto& name : linear_names) collector_.put(name, fresh.take(name));
}

}  // namespace presso

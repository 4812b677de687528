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
  // Exact for a weight read from the checkpoint; a packed one dequantized on load may not be.
  torch::Tensor original = linear->weight.to(stored_dtype, /*non_blocking=*/false, /*copy=*/true);
  if (!original.to(linear->weight.scalar_type()).equal(linear->weight)) {
    original = linear->weight.clone();
  }
  originals_[info.name] = std::move(original);
  LinearState state;
  state.linear = linear;
  state.info = info;
  states_[info.name] = std::move(state);
  grids_[info.name] = grid;
}

void BlockSession::gather_statistics(const std::vector<std::vector<std::string>>& targets,
                                     const std::vector<StatsRequest>& requests) {
  if (!activations_) return;
  std::vector<std::string> needed;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!requests[i].any()) continue;
    for (const auto& name : targets[i]) {
      collector_.request(name, requests[i]);
      if (std::find(needed.begin(), needed.end(), name) == needed.end()) needed.push_back(name);
    }
  }
  if (needed.empty()) return;
  observe_needed(collector_.as_hook(), needed);
}

void BlockSession::run_pass(Pass& pass, const std::vector<std::string>& targets) {
  if (targets.empty()) return;
  targets_ = &targets;
  pass.run(*this);
  targets_ = nullptr;
}

OutputErrorMeter BlockSession::advance_activations() {
  collector_.clear();
  module_inputs_.clear();
  OutputErrorMeter meter(activations_ ? activations_->tokens() : 0);
  if (!activations_) return meter;
  for (auto& [name, state] : states_) {
    const torch::Tensor now = effective_weight(*state.linear);
    torch::Tensor original = original_weight(name);
    if (!now.equal(original)) meter.track(name, original, now);
  }
  LinearHook hook = meter.as_hook();
  activations_->run(model_, block_, &hook, /*advance=*/true);
  return meter;
}

LinearState& BlockSession::state(const std::string& linear_name) {
  if (!targets_ || std::find(targets_->begin(), targets_->end(), linear_name) == targets_->end()) {
    fail_internal("a pass asked for linear '{}', which it does not target in block {}", linear_name,
                  block_.index);
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

const BlockActivations& BlockSession::activations(const char* what) const {
  if (!activations_) fail_internal("{} without calibration activations", what);
  return *activations_;
}

void BlockSession::recollect(const std::vector<std::string>& linear_names,
                             const StatsRequest& request) {
  activations("recollect");
  // A collector of its own, so the statistics of the other linears are not added to twice.
  StatisticsCollector fresh(model_.device());
  for (const auto& name : linear_names) fresh.request(name, request);
  observe_needed(fresh.as_hook(), linear_names);
  for (const auto& name : linear_names) collector_.put(name, fresh.take(name));
}

int64_t BlockSession::calibration_batches() const {
  return activations("calibration_batches").batches();
}

torch::Tensor BlockSession::calibration_batch(int64_t index) const {
  return activations("calibration_batch").batch(index);
}

LinearHook BlockSession::hook_for(const ObserverMap& observers) const {
  for (const auto& [name, observer] : observers) {
    if (!block_.find_linear(name) || observer == nullptr) {
      fail_internal("an observer for '{}', which is not a linear of block {}", name, block_.index);
    }
  }
  return [&observers](const std::string& name, const torch::Tensor& input) {
    auto it = observers.find(name);
    if (it != observers.end()) it->second->observe(input);
  };
}

void BlockSession::observe(const ObserverMap& observers) {
  activations("observe");
  std::vector<std::string> needed;
  for (const auto& entry : observers) needed.push_back(entry.first);
  observe_needed(hook_for(observers), needed);
}

void BlockSession::observe_needed(const LinearHook& hook, const std::vector<std::string>& needed) {
  const std::vector<ModuleSpec>& modules = model_.family().modules;
  for (const auto& module : modules) {
    auto cached = module_inputs_.find(module.name);
    if (cached == module_inputs_.end() || !holds_all(module, needed)) continue;
    const std::vector<torch::Tensor> now = upstream_weights(module);
    const std::vector<torch::Tensor>& then = cached->second.upstream;
    bool unchanged = true;
    for (size_t i = 0; i < now.size() && unchanged; ++i) {
      unchanged = now[i].defined() == then[i].defined() &&
                  (!now[i].defined() || now[i].equal(then[i]));
    }
    if (!unchanged) continue;
    activations_->observe_module(model_, block_, module.name, cached->second.batches, hook,
                                 needed);
    return;
  }
  // From the block's input, keeping the input of the module that holds every needed linear (the
  // next run for its later linears, down_proj after gate/up, starts there). Only that one: each
  // kept input is as large as the hidden states, and the first module's input is a norm away
  // from the block's, not worth keeping.
  const ModuleSpec* holder = nullptr;
  for (size_t i = 1; i < modules.size() && !holder; ++i) {
    if (holds_all(modules[i], needed)) holder = &modules[i];
  }
  if (holder) module_inputs_.clear();  // replaced below: never two kept at once
  ModuleInputs seen;
  const std::string first_linear = holder ? block_.prefix + holder->linears.front() : "";
  const torch::ScalarType kept_dtype = activations_->kept_input_dtype();
  std::vector<torch::Tensor> in_range;  // per batch, when narrowed: whether every value fit
  const LinearHook capturing = [&](const std::string& name, const torch::Tensor& input) {
    if (holder && name == first_linear) {
      seen.batches.push_back(input.to(kept_dtype));
      // The input is finite (observe() checks it), so a non-finite copy is one that overflowed.
      if (kept_dtype != input.scalar_type())
        in_range.push_back(torch::isfinite(seen.batches.back()).all());
    }
    hook(name, input);
  };
  activations_->observe(model_, block_, capturing, needed);
  if (!holder || static_cast<int64_t>(seen.batches.size()) != activations_->batches()) return;
  // Read once for the whole run; out of range, nothing is kept (re-runs start from the block).
  if (!in_range.empty() && !torch::stack(in_range).all().item<bool>()) return;
  std::vector<torch::Tensor> upstream = upstream_weights(*holder);
  for (auto& weight : upstream) {
    if (weight.defined()) weight = weight.clone();
  }
  seen.upstream = std::move(upstream);
  module_inputs_[holder->name] = std::move(seen);
}

std::vector<torch::Tensor> BlockSession::upstream_weights(const ModuleSpec& module) const {
  std::vector<torch::Tensor> weights;
  for (const auto& norm : block_.norms) {
    weights.push_back(norm.weight);
    weights.push_back(norm.bias.value_or(torch::Tensor()));
  }
  for (const auto& linear : block_.linears) {
    if (holds_all(module, {linear.name})) continue;
    weights.push_back(linear.weight);
    weights.push_back(linear.bias.value_or(torch::Tensor()));
    weights.push_back(linear.lowrank ? linear.lowrank->a : torch::Tensor());
    weights.push_back(linear.lowrank ? linear.lowrank->b : torch::Tensor());
  }
  return weights;
}

bool BlockSession::holds_all(const ModuleSpec& module,
                             const std::vector<std::string>& names) const {
  for (const auto& name : names) {
    const bool held = std::any_of(module.linears.begin(), module.linears.end(),
                                  [&](const std::string& relative) {
                                    return block_.prefix + relative == name;
                                  });
    if (!held) return false;
  }
  return true;
}

torch::Tensor BlockSession::run_module(const std::string& module, const torch::Tensor& input,
                                       const ObserverMap& observers) {
  LinearHook hook = hook_for(observers);
  if (module.empty()) return model_.run_block(block_, input, &hook);
  return model_.run_module(block_, module, input, &hook);
}

void BlockSession::check_foldable(const std::string& full_name, const char* role) const {
  auto it = states_.find(full_name);
  if (it == states_.end()) return;
  if (it->second.quant || it->second.linear->lowrank) {
    fail_internal(
        "cannot fold a scale into {} '{}': it is already quantized or has a low-rank "
        "path",
        role, full_name);
  }
}

void BlockSession::fold_scale(const std::string& producer,
                              const std::vector<std::string>& consumers, const torch::Tensor& s) {
  // s: [channels] > 0; folded in fp32 on the block's device.
  const torch::Tensor scale = s.to(device(), torch::kFloat32).contiguous();
  if (scale.dim() != 1 || !torch::isfinite(scale).all().item<bool>() ||
      !(scale != 0).all().item<bool>()) {
    fail_internal("fold_scale into '{}': the scale must be a finite, non-zero vector",
                  block_.prefix + producer);
  }
  auto check_channels = [&](int64_t channels, const std::string& name) {
    if (channels != scale.size(0)) {
      fail_internal("fold_scale: '{}' has {} channels, the scale {}", name, channels,
                    scale.size(0));
    }
  };
  std::vector<Linear*> readers;
  for (const auto& relative : consumers) {
    Linear& linear = block_.linear(relative);
    check_foldable(linear.name, "consumer");
    check_channels(linear.weight.size(1), linear.name);
    readers.push_back(&linear);
  }
  if (block_.has_norm(producer)) {
    Norm* found = nullptr;
    for (auto& candidate : block_.norms)
      if (candidate.name == block_.prefix + producer) found = &candidate;
    Norm& norm = *found;
    if (!norm.weight.defined()) {
      fail_internal("fold_scale: norm '{}' has no weight to fold a scale into", norm.name);
    }
    check_channels(norm.weight.size(0), norm.name);
    norm.weight.div_(scale);
    if (norm.bias) norm.bias->div_(scale);
  } else {
    Linear& linear = block_.linear(producer);
    check_foldable(linear.name, "producer");
    check_channels(linear.weight.size(0), linear.name);
    linear.weight.div_(scale.unsqueeze(1));
    if (linear.bias) linear.bias->div_(scale);
    torch::Tensor& rows = out_scales_[linear.name];
    rows = rows.defined() ? rows / scale : scale.reciprocal();
  }
  for (Linear* linear : readers) {
    linear->weight.mul_(scale.unsqueeze(0));
    torch::Tensor& columns = in_scales_[linear->name];
    columns = columns.defined() ? columns * scale : scale.clone();
    // The inputs gathered so far become x·diag(1/s).
    if (collector_.contains(linear->name)) {
      collector_.at(linear->name).scale_input_channels(scale.reciprocal());
    }
  }
}

torch::Tensor BlockSession::original_weight(const std::string& linear_name) {
  if (!block_.find_linear(linear_name)) {
    fail_internal("original_weight: '{}' is not a linear of block {}", linear_name, block_.index);
  }
  auto kept = originals_.find(linear_name);
  torch::Tensor weight =
      kept != originals_.end()
          ? kept->second.to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true)
          : model_.load_linear_weight(linear_name).to(device());
  if (auto it = in_scales_.find(linear_name); it != in_scales_.end()) {
    weight.mul_(it->second.unsqueeze(0));
  }
  if (auto it = out_scales_.find(linear_name); it != out_scales_.end()) {
    weight.mul_(it->second.unsqueeze(1));
  }
  return weight;
}

}  // namespace presso

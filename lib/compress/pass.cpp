#include "lib/compress/pass.h"

#include <algorithm>

#include "lib/common/errors.h"
#include "lib/sparse/mask.h"

namespace presso {

std::vector<PassSchema> registry_schemas(const PassRegistry& registry) {
  std::vector<PassSchema> schemas;
  for (const auto& entry : registry) schemas.push_back(entry.schema);
  return schemas;
}

const PassFactory& find_pass(const PassRegistry& registry, const std::string& name) {
  for (const auto& entry : registry) {
    if (entry.schema.name == name) return entry;
  }
  fail_internal("pass '{}' is not registered", name);
}

QuantScheme scheme_from_options(const PassOptions& options) {
  QuantScheme scheme;
  scheme.bits = static_cast<int>(options.get_int("bits"));
  scheme.group_size = static_cast<int>(options.get_int("group_size"));
  scheme.symmetric = options.get_bool("symmetric");
  return scheme;
}

void set_quantized(LinearState& state, QuantizedWeight quant) {
  if (state.mask) {
    // Pruned weights take the code of their group's zero point, which dequantizes to exactly 0
    // whatever the grid (the grid's range always holds 0).
    const torch::Tensor groups = column_groups(quant).to(torch::kLong);  // [in]
    const torch::Tensor zero =
        quant.zero_point.index_select(1, groups.to(quant.zero_point.device()));
    const torch::Tensor pruned = state.mask->logical_not().to(quant.q.device());
    quant.q = torch::where(pruned, zero.to(quant.q.scalar_type()), quant.q);
  }
  state.linear->weight = dequantize(quant).to(state.linear->weight.device());
  state.quant = std::move(quant);
}

void set_mask(LinearState& state, torch::Tensor mask) {
  const std::string& name = state.info.name;
  if (state.quant) fail_internal("'{}': prune before quantizing (it is already quantized)", name);
  torch::Tensor& weight = state.linear->weight;
  if (mask.scalar_type() != torch::kBool || mask.sizes() != weight.sizes()) {
    fail_internal("'{}': a mask must be bool [{}, {}] like the weight", name, weight.size(0),
                  weight.size(1));
  }
  mask = mask.to(weight.device());
  // A mask on top of an earlier one keeps only what both keep.
  if (state.mask) mask = mask.logical_and(state.mask->to(weight.device()));
  apply_mask_(weight, mask, name);
  state.mask = std::move(mask);
}

void set_lowrank(LinearState& state, LowRankPair pair) {
  const torch::Tensor& weight = state.linear->weight;
  if (pair.a.dim() != 2 || pair.b.dim() != 2 || pair.a.size(1) != weight.size(1) ||
      pair.b.size(0) != weight.size(0) || pair.a.size(0) != pair.b.size(1)) {
    fail_internal("'{}': a low-rank pair must be A [r, {}] and B [{}, r]", state.info.name,
                  weight.size(1), weight.size(0));
  }
  state.linear->lowrank = LowRankPair{pair.a.to(weight.device(), torch::kFloat32).contiguous(),
                                      pair.b.to(weight.device(), torch::kFloat32).contiguous()};
}

std::vector<std::vector<std::string>> input_groups(PassContext& context) {
  return input_groups(context.family(), context.block(), context.targets());
}

std::vector<std::vector<std::string>> input_groups(const FamilySpec& family,
                                                   const DecoderBlock& block,
                                                   const std::vector<std::string>& targets) {
  std::vector<std::vector<std::string>> groups;
  std::vector<std::string> placed;
  for (const auto& relative_group : family.sequential_groups) {
    std::vector<std::string> group;
    for (const auto& relative : relative_group) {
      const std::string name = block.prefix + relative;
      if (std::find(targets.begin(), targets.end(), name) != targets.end()) {
        group.push_back(name);
        placed.push_back(name);
      }
    }
    if (!group.empty()) groups.push_back(group);
  }
  for (const auto& name : targets) {
    if (std::find(placed.begin(), placed.end(), name) == placed.end()) groups.push_back({name});
  }
  return groups;
}

void for_each_input_group(PassContext& context, bool true_sequential, const StatsRequest& request,
                          const std::function<void(const std::vector<std::string>&)>& process) {
  bool block_changed = false;
  for (const auto& group : input_groups(context)) {
    if (true_sequential && block_changed) context.recollect(group, request);
    process(group);
    block_changed = true;
  }
}

}  // namespace presso

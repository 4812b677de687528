#include "lib/model/block.h"

#include "lib/common/errors.h"

namespace presso {

const Linear& DecoderBlock::linear(const std::string& relative_name) const {
  const std::string full = prefix + relative_name;
  for (const auto& l : linears)
    if (l.name == full) return l;
  fail_internal("block {} has no linear '{}'", index, full);
}

Linear& DecoderBlock::linear(const std::string& relative_name) {
  return const_cast<Linear&>(static_cast<const DecoderBlock&>(*this).linear(relative_name));
}

const Norm& DecoderBlock::norm(const std::string& relative_name) const {
  const std::string full = prefix + relative_name;
  for (const auto& n : norms)
    if (n.name == full) return n;
  fail_internal("block {} has no norm '{}'", index, full);
}

bool DecoderBlock::has_norm(const std::string& relative_name) const {
  const std::string full = prefix + relative_name;
  for (const auto& n : norms)
    if (n.name == full) return true;
  return false;
}

Linear* DecoderBlock::find_linear(const std::string& full_name) {
  for (auto& l : linears)
    if (l.name == full_name) return &l;
  return nullptr;
}

torch::Tensor effective_weight(const Linear& linear) {
  if (!linear.lowrank) return linear.weight;
  return linear.weight + torch::mm(linear.lowrank->b, linear.lowrank->a);
}

void DecoderBlock::to(torch::Device device) {
  for (auto& l : linears) {
    l.weight = l.weight.to(device);
    if (l.bias) l.bias = l.bias->to(device);
    if (l.lowrank) l.lowrank = LowRankPair{l.lowrank->a.to(device), l.lowrank->b.to(device)};
  }
  for (auto& n : norms) {
    if (n.weight.defined()) n.weight = n.weight.to(device);
    if (n.bias) n.bias = n.bias->to(device);
  }
}

int64_t DecoderBlock::parameter_count() const {
  int64_t count = 0;
  for (const auto& l : linears) count += l.weight.numel() + (l.bias ? l.bias->numel() : 0);
  for (const auto& n : norms)
    count += (n.weight.defined() ? n.weight.numel() : 0) + (n.bias ? n.bias->numel() : 0);
  return count;
}

}  // namespace presso

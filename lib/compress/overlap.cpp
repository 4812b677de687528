#include "lib/compress/overlap.h"

#include <utility>

#include "lib/quant/quantize.h"

namespace presso {

DecoderBlock BlockReader::take(int index, int next) {
  DecoderBlock block;
  if (pending_.valid() && pending_index_ == index) {
    block = pending_.get();
  } else {
    if (pending_.valid()) pending_.wait();  // a read nobody wants; its error does not matter
    pending_ = {};
    block = model_.load_block(index);
  }
  pending_index_ = -1;
  if (ahead_ && next >= 0) {
    pending_index_ = next;
    pending_ = std::async(std::launch::async, [this, next] { return read_on_host(next); });
  }
  block.to(model_.device());  // from page-locked memory when read ahead for a GPU: ~25 GB/s
  return block;
}

DecoderBlock BlockReader::read_on_host(int index) const {
  DecoderBlock block = model_.load_block(index, torch::kCPU);
  if (!model_.device().is_cuda()) return block;
  for (auto& linear : block.linears) {
    linear.weight = linear.weight.pin_memory();
    if (linear.bias) linear.bias = linear.bias->pin_memory();
    if (linear.lowrank)
      linear.lowrank = LowRankPair{linear.lowrank->a.pin_memory(), linear.lowrank->b.pin_memory()};
  }
  for (auto& norm : block.norms) {
    if (norm.weight.defined()) norm.weight = norm.weight.pin_memory();
    if (norm.bias) norm.bias = norm.bias->pin_memory();
  }
  return block;
}

namespace {

// A device tensor copied to the host through page-locked memory (LibTorch caches such buffers),
// several times faster than into pageable memory; a host tensor as it is.
torch::Tensor to_host(const torch::Tensor& t) {
  if (!t.defined() || t.is_cpu()) return t;
  torch::Tensor host = torch::empty(t.sizes(), t.options().device(torch::kCPU).pinned_memory(true));
  host.copy_(t);
  return host;
}

}  // namespace

HostBlock host_copy(const DecoderBlock& block, const std::map<std::string, LinearState>& states) {
  HostBlock host{block, {}};
  for (auto& linear : host.block.linears) {
    auto state = states.find(linear.name);
    // What the writers and the journal need of a quantized linear are its codes; the weight is
    // left behind when they reproduce it (checked where it lies, on the GPU).
    const bool from_codes = !linear.weight.is_cpu() && state != states.end() &&
                            state->second.quant && !linear.lowrank &&
                            linear.weight.equal(dequantize(*state->second.quant));
    linear.weight = from_codes ? torch::Tensor() : to_host(linear.weight);
    if (linear.bias) linear.bias = to_host(*linear.bias);
    if (linear.lowrank)
      linear.lowrank = LowRankPair{to_host(linear.lowrank->a), to_host(linear.lowrank->b)};
  }
  for (auto& norm : host.block.norms) {
    norm.weight = to_host(norm.weight);
    if (norm.bias) norm.bias = to_host(*norm.bias);
  }
  for (const auto& [name, state] : states) {
    LinearState copy = state;
    copy.linear = host.block.find_linear(name);
    if (copy.mask) copy.mask = to_host(*copy.mask);
    host.states.emplace(name, std::move(copy));
  }
  return host;
}

BackgroundTasks::~BackgroundTasks() { wait_quietly(); }

void BackgroundTasks::submit(std::function<void()> task) {
  wait();
  if (!enabled_) {
    task();
    return;
  }
  pending_ = std::async(std::launch::async, [this, task = std::move(task)] { stream_.run(task); });
}

void BackgroundTasks::wait() {
  if (!pending_.valid()) return;
  std::future<void> done = std::move(pending_);
  done.get();
}

void BackgroundTasks::wait_quietly() noexcept {
  try {
    wait();
  } catch (...) {
  }
}

}  // namespace presso

#include "lib/compress/block_writer.h"

#include "lib/common/errors.h"

namespace presso {
namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

BlockWriter::BlockWriter(const Model& model,
                         const std::vector<std::unique_ptr<CheckpointWriter>>& writers)
    : model_(model), writers_(writers), block_tensors_(model.num_blocks()) {
  std::vector<std::string> prefixes;
  for (int i = 0; i < model.num_blocks(); ++i) prefixes.push_back(model.family().block_name(i));
  for (const auto& name : model.tensors().names()) {
    bool in_block = false;
    // Block names end with a dot, so "layers.1." never claims "layers.10.x".
    for (int i = 0; i < model.num_blocks() && !in_block; ++i) {
      if (starts_with(name, prefixes[i])) {
        block_tensors_[i].push_back(name);
        in_block = true;
      }
    }
    if (!in_block) outer_tensors_.push_back(name);
  }
}

torch::ScalarType BlockWriter::weight_dtype(const Linear& linear) const {
  return st_dtype_to_torch(model_.tensors().info(linear.name + ".weight").dtype);
}

void BlockWriter::add_tensor(const std::string& name, const torch::Tensor& tensor) {
  for (const auto& writer : writers_) writer->add_tensor(name, tensor);
}

void BlockWriter::write_outer() {
  for (const auto& name : outer_tensors_)
    add_tensor(name, model_.tensors().load(name, std::nullopt));
}

void BlockWriter::write_block(const DecoderBlock& block,
                              const std::map<std::string, LinearState>& states) {
  const TensorStore& store = model_.tensors();
  auto stored = [&](const std::string& name, const torch::Tensor& value) {
    return value.to(torch::kCPU, st_dtype_to_torch(store.info(name).dtype)).contiguous();
  };
  std::map<std::string, torch::Tensor> from_memory;
  std::map<std::string, const Linear*> linears;  // weights written by the CheckpointWriter
  for (const auto& linear : block.linears) {
    linears[linear.name + ".weight"] = &linear;
    if (linear.bias)
      from_memory[linear.name + ".bias"] = stored(linear.name + ".bias", *linear.bias);
  }
  for (const auto& norm : block.norms) {
    if (norm.weight.defined())
      from_memory[norm.name + ".weight"] = stored(norm.name + ".weight", norm.weight);
    if (norm.bias) from_memory[norm.name + ".bias"] = stored(norm.name + ".bias", *norm.bias);
  }
  for (const auto& name : block_tensors_.at(block.index)) {
    if (auto l = linears.find(name); l != linears.end()) {
      write_linear(*l->second, states);
    } else if (auto m = from_memory.find(name); m != from_memory.end()) {
      add_tensor(name, m->second);
    } else {
      add_tensor(name, store.load(name, std::nullopt));
    }
  }
}

void BlockWriter::write_linear(const Linear& linear,
                               const std::map<std::string, LinearState>& states) {
  auto state = states.find(linear.name);
  const torch::ScalarType dtype = weight_dtype(linear);
  for (const auto& writer : writers_) {
    if (state != states.end() && state->second.quant) {
      writer->add_quantized(linear, *state->second.quant, dtype);
    } else {
      writer->add_dense_linear(linear, dtype);
    }
    if (linear.lowrank) writer->add_lowrank(linear);
  }
}

}  // namespace presso

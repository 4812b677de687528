// Hands the compressed model to the checkpoint writers tensor by tensor, in the source
// checkpoint's names and dtypes: tensors outside the blocks raw from the source, each block's
// tensors from its compressed state. Internal to the driver.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/compress/pass.h"
#include "lib/export/checkpoint_writer.h"
#include "lib/model/model.h"

namespace presso {

class BlockWriter {
 public:
  BlockWriter(const Model& model, const std::vector<std::unique_ptr<CheckpointWriter>>& writers);

  // The source checkpoint's dtype of a linear's weight.
  torch::ScalarType weight_dtype(const Linear& linear) const;
  // Every tensor that belongs to no block, copied as stored.
  void write_outer();
  // Every tensor of the block: linears through the writers (packed, dense or sparse, and their
  // low-rank paths), biases and norms from memory cast back to their stored dtype, anything else
  // copied as stored.
  void write_block(const DecoderBlock& block, const std::map<std::string, LinearState>& states);

 private:
  void add_tensor(const std::string& name, const torch::Tensor& tensor);
  void write_linear(const Linear& linear, const std::map<std::string, LinearState>& states);

  const Model& model_;
  const std::vector<std::unique_ptr<CheckpointWriter>>& writers_;
  std::vector<std::vector<std::string>> block_tensors_;  // stored names per block
  std::vector<std::string> outer_tensors_;
};

}  // namespace presso

// The sharded checkpoint's model.safetensors.index.json. An accepted weight_map names only plain
// relative files: TensorStore opens each as a path below the checkpoint directory.
#include <filesystem>

#include "fuzz/harness.h"
#include "lib/io/safetensors.h"

namespace presso {

bool fuzz_shard_index(std::string_view input) {
  for (const auto& [tensor, shard] : parse_shard_index(input, "model.safetensors.index.json")) {
    const std::filesystem::path path(shard);
    fuzz_expect(!path.empty() && path.is_relative(), "a shard is a relative path");
    for (const auto& part : path) fuzz_expect(part != "..", "a shard path never climbs out");
  }
  return true;
}

}  // namespace presso

// config.json and the packed checkpoints' quantization_config. Each input is read twice: as a
// whole config.json, and as the quantization_config of a fixed, valid llama config — the way a
// real one reaches PackedWeights::parse, after parse_model_config has bounded its nesting.
#include <cstdint>
#include <string>

#include "fuzz/harness.h"
#include "lib/common/errors.h"
#include "lib/model/config.h"
#include "lib/model/packed_weights.h"

namespace presso {
namespace {

constexpr const char* kLlamaConfigPrefix =
    R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 160,
"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
"dtype": "bfloat16", "quantization_config": )";

// What parse_model_config promises of an accepted config: sizes that the model can be built
// from (config_reader.h's positive(): [1, 2^24]) and one attention window per layer.
void expect_buildable(const ModelConfig& c) {
  constexpr int64_t kMaxSize = int64_t{1} << 24;
  for (int64_t size : {c.hidden_size, c.num_layers, c.num_heads, c.num_kv_heads, c.vocab_size,
                       c.max_position_embeddings})
    fuzz_expect(size >= 1 && size <= kMaxSize, "sizes and counts lie in [1, 2^24]");
  fuzz_expect(c.head_dim >= 1 && c.intermediate_size >= 1, "head_dim and the MLP are not empty");
  fuzz_expect(c.num_heads % c.num_kv_heads == 0, "kv heads divide the attention heads");
  fuzz_expect(static_cast<int64_t>(c.sliding_windows.size()) == c.num_layers,
              "one attention window per layer");
}

bool read_config(const std::string& text) {
  try {
    const ModelConfig config = parse_model_config(text, "config.json");
    expect_buildable(config);
    const PackedWeights packed =
        PackedWeights::parse(config.quantization_config, config.path, config.dtype);
    fuzz_expect(!packed.describe().empty(), "a packed config describes itself");
    return true;
  } catch (const UserError&) {
    return false;
  }
}

}  // namespace

bool fuzz_model_config(std::string_view input) {
  const bool as_config = read_config(std::string(input));
  const bool as_quantization_config = read_config(kLlamaConfigPrefix + std::string(input) + "}");
  return as_config || as_quantization_config;
}

}  // namespace presso

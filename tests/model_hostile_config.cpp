// config.json values that used to crash presso or exhaust its memory: nesting 100k levels deep
// (SIGSEGV), sizes of 1e12 (bad_alloc), more layers than the checkpoint holds, a FIFO, and a
// quantization_config target regex that backtracks for ever.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/io/safetensors.h"
#include "lib/model/config.h"
#include "lib/model/model.h"
#include "lib/model/packed_weights.h"
#include "tests/catch_torch.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"
#include "tests/user_error.h"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using nlohmann::json;
using presso::test::user_error_of;

const fs::path kModel = presso::test::test_data() / "sotu-llama-16m";

json shipped_config() { return json::parse(std::ifstream(kModel / "config.json")); }

// The shipped model's directory with another config.json; the weights are linked, not copied.
void write_model_dir(const presso::test::TempDir& dir, const std::string& config_text) {
  dir.write("config.json", config_text);
  fs::create_symlink(kModel / "model.safetensors", dir.path / "model.safetensors");
}

}  // namespace

TEST_CASE("config.json nested 100k levels deep is refused in quantization_config too", "[unit]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string text = shipped_config().dump();
  text.pop_back();  // the closing brace
  for (const char* key : {"quantization_config", "extra"}) {
    CHECK_THAT(user_error_of([&] {
                 presso::parse_model_config(text + ", \"" + key + "\": " + deep + "}",
                                            "m/config.json");
               }),
               Contains("m/config.json") && Contains("nests deeper"));
  }
}

TEST_CASE("sizes in config.json beyond any model are refused naming the key", "[unit]") {
  for (const char* key : {"num_hidden_layers", "hidden_size", "intermediate_size", "vocab_size",
                          "num_attention_heads", "num_key_value_heads", "head_dim"}) {
    json config = shipped_config();
    config[key] = int64_t{1000000000000};
    CHECK_THAT(user_error_of([&] { presso::parse_model_config(config.dump(), "config.json"); }),
               Contains("key '" + std::string(key) + "'") && Contains("larger than any model"));
  }
}

TEST_CASE("more layers in config.json than the checkpoint holds are refused at open", "[unit]") {
  presso::test::TempDir dir("layers_beyond_checkpoint");
  json config = shipped_config();
  config["num_hidden_layers"] = int64_t{1} << 24;
  write_model_dir(dir, config.dump());
  CHECK_THAT(user_error_of([&] { presso::Model::open(dir.path.string()); }),
             Contains("16777216 decoder layers") && Contains("model.layers.16777215."));
}

TEST_CASE("a FIFO named config.json is refused instead of blocking", "[unit]") {
  presso::test::TempDir dir("fifo_config");
  REQUIRE(::mkfifo(dir.file("config.json").c_str(), 0600) == 0);
  CHECK_THAT(user_error_of([&] { presso::load_model_config(dir.path.string()); }),
             Contains("config.json") && Contains("FIFO"));
}

TEST_CASE("a quantization_config target regex that backtracks is refused naming it", "[unit]") {
  const json quantization = {{"quant_method", "compressed-tensors"},
                             {"format", "pack-quantized"},
                             {"config_groups",
                              {{"group_0",
                                {{"targets", {"re:(.+)+[xz]"}},
                                 {"weights",
                                  {{"num_bits", 4},
                                   {"type", "int"},
                                   {"symmetric", true},
                                   {"strategy", "group"},
                                   {"group_size", 128}}}}}}}};
  const auto packed =
      presso::PackedWeights::parse(quantization.dump(), "m/config.json", "bfloat16");
  const auto store = presso::TensorStore::open_dir(kModel.string());
  CHECK_THAT(user_error_of([&] { packed.is_packed("model.layers.0.self_attn.q_proj", store); }),
             Contains("m/config.json") && Contains("re:(.+)+[xz]") &&
                 Contains("backtracks catastrophically"));
}

TEST_CASE("widths and group sizes beyond int in quantization_config are refused unwrapped",
          "[unit]") {
  const int64_t wraps_to_4 = (int64_t{1} << 32) + 4, wraps_to_128 = (int64_t{1} << 32) + 128;
  const json ct_weights = {{"num_bits", 4},
                           {"type", "int"},
                           {"symmetric", true},
                           {"strategy", "group"},
                           {"group_size", 128}};
  struct Case {
    json quantization;
    std::string key;
  };
  std::vector<Case> cases;
  for (const char* key : {"num_bits", "group_size"}) {
    json weights = ct_weights;
    weights[key] = std::string(key) == "num_bits" ? wraps_to_4 : wraps_to_128;
    cases.push_back(
        {{{"quant_method", "compressed-tensors"},
          {"format", "pack-quantized"},
          {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}}}}}},
         key});
  }
  for (const char* key : {"bits", "group_size"}) {
    json gptq = {{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 128}};
    gptq[key] = std::string(key) == "bits" ? wraps_to_4 : wraps_to_128;
    cases.push_back({gptq, key});
    json awq = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}};
    awq[key] = gptq[key];
    cases.push_back({awq, key});
  }
  for (const auto& c : cases) {
    INFO(c.quantization.dump());
    CHECK_THAT(user_error_of([&] {
                 presso::PackedWeights::parse(c.quantization.dump(), "m/config.json", "bfloat16");
               }),
               Contains("m/config.json") && Contains(c.key) && Contains("out of range"));
  }
}

// config.json parsing: both rope spellings, the family registry, and broken configs, each of which
// must give one UserError naming the file and the key.
#include "tests/catch_torch.h"
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/common/errors.h"
#include "lib/io/safetensors.h"
#include "lib/model/config.h"
#include "lib/model/family.h"
#include "lib/model/model.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using nlohmann::json;

const char* const kFile = "tiny-test/config.json";

json llama_config() {
  return json{{"model_type", "llama"},  {"hidden_size", 64},        {"intermediate_size", 160},
              {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
              {"vocab_size", 256},      {"rms_norm_eps", 1e-6},     {"tie_word_embeddings", false},
              {"rope_theta", 10000.0}};
}

presso::ModelConfig parse(const json& config) {
  return presso::parse_model_config(config.dump(), kFile);
}

// The UserError's message, or a failure if none was thrown.
std::string user_error(const json& config) {
  try {
    parse(config);
  } catch (const presso::UserError& e) {
    return e.what();
  }
  FAIL("no UserError for " << config.dump());
  return "";
}

void require_names(const std::string& message, const std::string& key) {
  INFO(message);
  CHECK_THAT(message, Contains(kFile));
  CHECK_THAT(message, Contains("'" + key + "'"));
}

}  // namespace

TEST_CASE("both rope spellings parse to the same rope", "[unit]") {
  json legacy = llama_config();
  legacy["rope_theta"] = 500000.0;
  legacy["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 8.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 32}};
  json modern = llama_config();
  modern.erase("rope_theta");
  modern["rope_parameters"] = legacy["rope_scaling"];
  modern["rope_parameters"]["rope_theta"] = 500000.0;
  const auto a = parse(legacy), b = parse(modern);
  REQUIRE(a.rope);
  REQUIRE(b.rope);
  CHECK(*a.rope == *b.rope);
  CHECK(a.rope->type == presso::RopeType::kLlama3);
  CHECK(a.rope->theta == 500000.0);
  CHECK(a.rope->original_max_position_embeddings == 32);

  // The older `type` key and a linear scaling.
  legacy["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  modern["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 500000.0}};
  CHECK(*parse(legacy).rope == *parse(modern).rope);
  CHECK(parse(legacy).rope->type == presso::RopeType::kLinear);

  // No rope keys at all: transformers' default rope with theta 10000.
  json bare = llama_config();
  bare.erase("rope_theta");
  CHECK(*parse(bare).rope == presso::RopeConfig{});
}

TEST_CASE("family-specific keys take transformers' defaults", "[unit]") {
  const auto llama = parse(llama_config());
  CHECK(llama.family == "llama");
  CHECK(llama.head_dim == 16);
  CHECK(llama.sliding_windows == std::vector<int64_t>{0, 0});

  json qwen3 = llama_config();
  qwen3["model_type"] = "qwen3";
  qwen3["head_dim"] = 32;  // != hidden / heads
  qwen3["use_sliding_window"] = true;
  qwen3["sliding_window"] = 8;
  qwen3["max_window_layers"] = 1;
  const auto q3 = parse(qwen3);
  CHECK(q3.head_dim == 32);
  CHECK(q3.sliding_windows == std::vector<int64_t>{0, 8});

  json qwen2 = llama_config();
  qwen2["model_type"] = "qwen2";
  qwen2["sliding_window"] = 8;  // ignored without use_sliding_window
  const auto q2 = parse(qwen2);
  CHECK(q2.qkv_bias);
  CHECK_FALSE(q2.o_bias);
  CHECK(q2.sliding_windows == std::vector<int64_t>{0, 0});

  json mistral = llama_config();
  mistral["model_type"] = "mistral";
  CHECK(parse(mistral).sliding_windows == std::vector<int64_t>{4096, 4096});  // class default
  mistral["sliding_window"] = nullptr;
  CHECK(parse(mistral).sliding_windows == std::vector<int64_t>{0, 0});

  const json gpt2 = {{"model_type", "gpt2"}, {"n_embd", 64},      {"n_layer", 2},
                     {"n_head", 4},          {"vocab_size", 256}, {"n_inner", nullptr}};
  const auto g = parse(gpt2);
  CHECK(g.intermediate_size == 256);
  CHECK(g.max_position_embeddings == 1024);
  CHECK(g.activation == presso::Activation::kGeluTanh);
  CHECK(g.tie_word_embeddings);
  CHECK_FALSE(g.rope);

  const json opt = {
      {"model_type", "opt"},           {"hidden_size", 64},        {"ffn_dim", 160},
      {"num_hidden_layers", 2},        {"num_attention_heads", 4}, {"vocab_size", 256},
      {"do_layer_norm_before", false}, {"word_embed_proj_dim", 32}};
  const auto o = parse(opt);
  CHECK_FALSE(o.final_norm);  // post-LN OPT has no final LayerNorm
  CHECK(o.word_embed_proj_dim == 32);
  CHECK(o.activation == presso::Activation::kRelu);
}

TEST_CASE("the registry lists every supported model_type once", "[unit]") {
  CHECK(presso::supported_model_types() ==
        std::vector<std::string>{"gpt2", "llama", "mistral", "opt", "qwen2", "qwen3"});
  const auto spec = presso::find_family("gpt2")->describe(parse(
      {{"model_type", "gpt2"}, {"n_embd", 64}, {"n_layer", 2}, {"n_head", 4}, {"vocab_size", 9}}));
  REQUIRE(spec.block_linears.size() == 4);
  CHECK(spec.block_linears[0].conv1d);
  CHECK(spec.block_linears[0].fused_qkv);
  CHECK(spec.block_linears[0].out == 192);
}

TEST_CASE("an unsupported model_type names the supported ones", "[unit]") {
  json config = llama_config();
  config["model_type"] = "bert";
  const std::string message = user_error(config);
  require_names(message, "model_type");
  for (const char* type : {"gpt2", "llama", "mistral", "opt", "qwen2", "qwen3"})
    CHECK_THAT(message, Contains(type));
}

TEST_CASE("broken configs name the file and the key", "[unit]") {
  SECTION("not JSON") {
    try {
      presso::parse_model_config("{\"model_type\": \"llama\",", kFile);
      FAIL("no error");
    } catch (const presso::UserError& e) {
      CHECK_THAT(e.what(), Contains(kFile) && Contains("not valid JSON"));
    }
  }
  SECTION("missing model_type") {
    json c = llama_config();
    c.erase("model_type");
    require_names(user_error(c), "model_type");
  }
  SECTION("missing hidden_size") {
    json c = llama_config();
    c.erase("hidden_size");
    require_names(user_error(c), "hidden_size");
  }
  SECTION("wrong type") {
    json c = llama_config();
    c["num_hidden_layers"] = "2";
    const std::string message = user_error(c);
    require_names(message, "num_hidden_layers");
    CHECK_THAT(message, Contains("expected an integer"));
  }
  SECTION("zero heads") {
    json c = llama_config();
    c["num_attention_heads"] = 0;
    require_names(user_error(c), "num_attention_heads");
  }
  SECTION("negative kv heads") {
    json c = llama_config();
    c["num_key_value_heads"] = -2;
    require_names(user_error(c), "num_key_value_heads");
  }
  SECTION("heads not dividing hidden without head_dim") {
    json c = llama_config();
    c["num_attention_heads"] = 5;
    c["num_key_value_heads"] = 5;
    require_names(user_error(c), "num_attention_heads");
  }
  SECTION("kv heads not dividing heads") {
    json c = llama_config();
    c["num_key_value_heads"] = 3;
    require_names(user_error(c), "num_key_value_heads");
  }
  SECTION("unknown rope_type") {
    json c = llama_config();
    c["rope_parameters"] = {{"rope_type", "ntk-by-parts"}, {"rope_theta", 1e4}};
    const std::string message = user_error(c);
    require_names(message, "rope_parameters.rope_type");
    CHECK_THAT(message, Contains("default, linear, llama3"));
  }
  SECTION("rope type not implemented") {
    json c = llama_config();
    c["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
    const std::string message = user_error(c);
    require_names(message, "rope_scaling.type");
    CHECK_THAT(message, Contains("not implemented"));
  }
  SECTION("llama3 rope without its frequency keys") {
    json c = llama_config();
    c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
    const std::string message = user_error(c);
    require_names(message, "rope_scaling.low_freq_factor");
    require_names(message, "rope_scaling.original_max_position_embeddings");
  }
  SECTION("unknown activation") {
    json c = llama_config();
    c["hidden_act"] = "mish";
    require_names(user_error(c), "hidden_act");
  }
  SECTION("layer_types of the wrong length") {
    json c = llama_config();
    c["model_type"] = "qwen2";
    c["layer_types"] = {"full_attention"};
    require_names(user_error(c), "layer_types");
  }
  SECTION("gpt2 heads not dividing n_embd") {
    const json c = {
        {"model_type", "gpt2"}, {"n_embd", 64}, {"n_layer", 2}, {"n_head", 6}, {"vocab_size", 9}};
    require_names(user_error(c), "n_head");
  }
  SECTION("several problems are reported together") {
    json c = llama_config();
    c.erase("hidden_size");
    c["vocab_size"] = 2.5;
    const std::string message = user_error(c);
    require_names(message, "hidden_size");
    require_names(message, "vocab_size");
  }
}

TEST_CASE("a directory without config.json is a user error", "[unit]") {
  presso::test::TempDir dir("no-config");
  try {
    presso::load_model_config(dir.path.string());
    FAIL("no error");
  } catch (const presso::UserError& e) {
    CHECK_THAT(e.what(), Contains(dir.path.string()) && Contains("config.json"));
  }
}

// A one-block llama checkpoint; `v_rows` sets v_proj's (correct: 32) rows, `with_up` whether
// mlp.up_proj is written at all.
static void write_one_block_llama(const fs::path& dir, int64_t v_rows, bool with_up) {
  json config = llama_config();
  config["num_hidden_layers"] = 1;
  config["tie_word_embeddings"] = true;
  std::ofstream(dir / "config.json") << config.dump();
  presso::SafetensorsWriter writer((dir / "model.safetensors").string());
  writer.add("model.embed_tokens.weight", torch::zeros({256, 64}));
  writer.add("model.norm.weight", torch::ones({64}));
  writer.add("model.layers.0.input_layernorm.weight", torch::ones({64}));
  writer.add("model.layers.0.post_attention_layernorm.weight", torch::ones({64}));
  writer.add("model.layers.0.self_attn.q_proj.weight", torch::zeros({64, 64}));
  writer.add("model.layers.0.self_attn.k_proj.weight", torch::zeros({32, 64}));
  writer.add("model.layers.0.self_attn.v_proj.weight", torch::zeros({v_rows, 64}));
  writer.add("model.layers.0.self_attn.o_proj.weight", torch::zeros({64, 64}));
  writer.add("model.layers.0.mlp.gate_proj.weight", torch::zeros({160, 64}));
  if (with_up) writer.add("model.layers.0.mlp.up_proj.weight", torch::zeros({160, 64}));
  writer.add("model.layers.0.mlp.down_proj.weight", torch::zeros({64, 160}));
  writer.finish();
}

static std::string block_load_error(const fs::path& dir) {
  const auto model = presso::Model::open(dir.string());
  try {
    model.load_block(0);
  } catch (const presso::UserError& e) {
    return e.what();
  }
  FAIL("no UserError loading block 0 of " << dir);
  return "";
}

TEST_CASE("a tensor missing from the checkpoint is named at block load", "[unit]") {
  presso::test::TempDir dir("missing-tensor");
  write_one_block_llama(dir.path, 32, /*with_up=*/false);
  const std::string message = block_load_error(dir.path);
  INFO(message);
  CHECK_THAT(message, Contains(dir.path.string()));
  CHECK_THAT(message, Contains("'model.layers.0.mlp.up_proj.weight'") && Contains("missing"));
  CHECK_THROWS_AS(presso::Model::open(dir.path.string()).parameter_count(), presso::UserError);
}

TEST_CASE("a tensor of the wrong shape is named at block load", "[unit]") {
  presso::test::TempDir dir("bad-shape");
  write_one_block_llama(dir.path, 64, /*with_up=*/true);
  const std::string message = block_load_error(dir.path);
  INFO(message);
  CHECK_THAT(message, Contains("'model.layers.0.self_attn.v_proj.weight'"));
  CHECK_THAT(message, Contains("[64, 64]") && Contains("[32, 64]"));
}

TEST_CASE("a negative norm epsilon or a position limit of 0 names its key", "[unit]") {
  json c = llama_config();
  c["rms_norm_eps"] = -1;
  require_names(user_error(c), "rms_norm_eps");
  c = llama_config();
  c["max_position_embeddings"] = 0;
  require_names(user_error(c), "max_position_embeddings");
  const json gpt2 = {{"model_type", "gpt2"}, {"n_embd", 64},    {"n_layer", 2},
                     {"n_head", 4},          {"vocab_size", 9}, {"layer_norm_epsilon", -1e-5}};
  require_names(user_error(gpt2), "layer_norm_epsilon");
  c = llama_config();
  c["rms_norm_eps"] = 0;  // unusual, but a finite norm
  CHECK_NOTHROW(parse(c));
}

TEST_CASE("a llama refuses sequences longer than its positions as OPT and GPT-2 do", "[unit]") {
  const auto model = presso::Model::open((presso::test::test_data() / "sotu-llama-16m").string());
  CHECK(model.embed(torch::zeros({1, 1024}, torch::kLong)).size(1) == 1024);
  try {
    model.embed(torch::zeros({1, 1025}, torch::kLong));
    FAIL("no error");
  } catch (const presso::UserError& e) {
    CHECK_THAT(e.what(), Contains("1025") && Contains("'max_position_embeddings'"));
  }
  CHECK_THROWS_AS(model.check_sequence_length(1025, "--seqlen"), presso::UserError);
}

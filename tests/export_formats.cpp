// Output formats: every packed format written from a real model loads back (Model::open) to the
// dequantized weights bit for bit, an independent loop reader written from docs/formats.md
// decodes the files to the dense export's tensors bit for bit, compressed-tensors'
// quantization_config carries upstream's fields, and unsupported quantization configs are refused
// (GPTQ / AWQ configs and the serving table: export_serving.cpp).
#include "tests/catch_torch.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/export/checkpoint_writer.h"
#include "lib/io/safetensors.h"
#include "lib/model/inspect.h"
#include "lib/model/model.h"
#include "tests/export_helpers.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

using namespace presso;
using presso::test::TempDir;
namespace fs = std::filesystem;

namespace {

struct Combo {
  const char* label;
  OutputFormat format;
  QuantScheme scheme;
};

// The format × scheme combinations checked on every model (group 128 becomes 32 where 128 does
// not divide the widths of the tiny fixtures).
const std::vector<Combo> kCombos = {
    {"compressed-tensors w4 g128 asym", OutputFormat::kCompressedTensors, {4, 128, false}},
    {"compressed-tensors w3 g128 asym", OutputFormat::kCompressedTensors, {3, 128, false}},
    {"compressed-tensors w8 per-channel sym", OutputFormat::kCompressedTensors, {8, -1, true}},
    {"gptq w4 g128 asym", OutputFormat::kGptq, {4, 128, false}},
    {"gptq w3 g128 sym", OutputFormat::kGptq, {3, 128, true}},
    {"awq w4 g128 asym", OutputFormat::kAwq, {4, 128, false}},
};

std::vector<LinearPlan> plan_of(const Model& model, const QuantScheme& scheme) {
  std::vector<LinearPlan> plan;
  for (int b = 0; b < model.num_blocks(); ++b)
    for (const auto& l : model.family().block_linears)
      plan.push_back(
          {model.family().block_name(b) + l.name, l.out, l.in, scheme, false, std::nullopt, false});
  return plan;
}

// `scheme` with its group size shrunk to 32 when it does not divide every block linear's width.
QuantScheme fitted(const Model& model, QuantScheme scheme) {
  if (scheme.group_size <= 0) return scheme;
  for (const auto& l : model.family().block_linears)
    if (l.in % scheme.group_size != 0) scheme.group_size = 32;
  return scheme;
}

torch::Tensor input_ids_for(const fs::path& dir, const Model& model) {
  const fs::path path = dir / "reference_logits.safetensors";
  if (fs::exists(path)) return SafetensorsFile(path.string()).load("input_ids", torch::kLong);
  torch::manual_seed(0);
  return torch::randint(0, model.config().vocab_size, {1, 32}, torch::kLong);
}

std::set<std::string> conv1d_linears(const Model& model) {
  std::set<std::string> names;
  for (int b = 0; b < model.num_blocks(); ++b)
    for (const auto& l : model.family().block_linears)
      if (l.conv1d) names.insert(model.family().block_name(b) + l.name);
  return names;
}

// Every check of one format × scheme on one model: load back, independent reader, logits.
void check_round_trip(const fs::path& dir, const Combo& combo) {
  const Model source = Model::open(dir.string());
  const QuantScheme scheme = fitted(source, combo.scheme);
  if (!format_problems(combo.format, plan_of(source, scheme)).empty()) {
    std::printf("  %-24s %-38s skipped: the format cannot hold it\n",
                dir.filename().string().c_str(), combo.label);
    return;
  }
  INFO(dir.string() << ": " << combo.label);
  TempDir tmp("export_formats");
  const std::string packed_dir = tmp.file("packed"), dense_dir = tmp.file("dense");
  const auto weights =
      test::write_model(source, combo.format, test::rtn_everywhere(scheme), packed_dir, dense_dir);
  const Model packed = Model::open(packed_dir);
  const Model dense = Model::open(dense_dir);
  REQUIRE(packed.packed().any());
  CHECK_FALSE(dense.packed().any());
  CHECK(packed.parameter_count() == source.parameter_count());
  for (const auto& name : packed.tensor_names()) CHECK(packed.tensors().contains(name));

  // Loaded back: exactly the dequantized QuantizedWeight; cast to the stored dtype: exactly the
  // dense export's tensor.
  const std::set<std::string> conv1d = conv1d_linears(source);
  for (int b = 0; b < packed.num_blocks(); ++b) {
    const DecoderBlock block = packed.load_block(b);
    for (const Linear& linear : block.linears) {
      INFO(linear.name);
      REQUIRE(packed.packed().is_packed(linear.name, packed.tensors()));
      CHECK(torch::equal(linear.weight, dequantize(weights.at(linear.name))));
      torch::Tensor stored = dense.tensors().load(linear.name + ".weight", std::nullopt);
      if (conv1d.count(linear.name)) stored = stored.t();
      CHECK(torch::equal(linear.weight.to(stored.scalar_type()), stored));
    }
  }

  // The independent reader over the packed file.
  const nlohmann::json q =
      test::read_json(fs::path(packed_dir) / "config.json").at("quantization_config");
  const SafetensorsFile file((fs::path(packed_dir) / "model.safetensors").string());
  CHECK(file.metadata().at("format") == "pt");
  int read = 0;
  for (const auto& tensor : file.names()) {
    for (const std::string suffix : {".weight_packed", ".qweight"}) {
      if (tensor.size() <= suffix.size() ||
          tensor.compare(tensor.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      const std::string linear = tensor.substr(0, tensor.size() - suffix.size());
      INFO("independent reader: " << linear);
      torch::Tensor stored = dense.tensors().load(linear + ".weight", std::nullopt);
      if (conv1d.count(linear)) stored = stored.t();
      const torch::Tensor decoded = test::read_packed_linear(file, q, linear);
      CHECK(torch::equal(decoded.to(stored.scalar_type()), stored));
      ++read;
    }
  }
  CHECK(read == static_cast<int>(weights.size()));

  // Logits: fp32 checkpoints hold the dequantized weights exactly, so the dense export runs the
  // same numbers; bf16/fp16 ones round each weight once.
  const torch::Tensor ids = input_ids_for(dir, source);
  const torch::Tensor a = packed.forward(ids), d = dense.forward(ids);
  const double error = ((a - d).abs().max() / d.abs().max()).item<double>();
  // GPTQ / AWQ write every tensor in float16 (their model_dtype), so only the dense-dtype formats
  // keep an fp32 checkpoint's numbers exactly.
  const bool fp32 = test::stored_dtype(source, weights.begin()->first) == torch::kFloat32 &&
                    !format_spec(combo.format).model_dtype;
  std::printf("  %-24s %-38s%s logits vs dense export: max relative difference %.2g\n",
              dir.filename().string().c_str(), combo.label,
              scheme.group_size == combo.scheme.group_size ? "" : " (as g32)", error);
  if (fp32) {
    CHECK(torch::equal(a, d));
  } else {
    CHECK(error < 1e-2);
  }
}

}  // namespace

TEST_CASE("every packed format loads back to the dequantized weights, bit for bit", "[unit]") {
  for (const Combo& combo : kCombos) check_round_trip(test::test_data() / "sotu-llama-16m", combo);
}

TEST_CASE("every fixture checkpoint round-trips through every packed format", "[golden]") {
  auto fx = test::fixtures_or_skip();
  if (!fx) return;
  for (const auto& dir : test::all_checkpoint_dirs(*fx)) {
    // The shipped model is checked in full by the unit test; the larger ones get one combo per
    // format to keep the suite fast.
    const bool large = dir.parent_path().filename() == "models";
    for (const Combo& combo : kCombos) {
      if (large && combo.scheme.bits != 4) continue;
      check_round_trip(dir, combo);
    }
  }
}

TEST_CASE("compressed-tensors quantization_config has upstream's fields and ignore list",
          "[unit]") {
  const Model source = Model::open((test::test_data() / "sotu-llama-16m").string());
  TempDir tmp("export_ct_config");
  const std::string skipped = "model.layers.0.mlp.down_proj";
  test::write_model(
      source, OutputFormat::kCompressedTensors,
      [&](const Linear& linear, const GridOptions& grid) -> std::optional<QuantizedWeight> {
        if (linear.name == skipped) return std::nullopt;
        return quantize_rtn(linear.weight, {4, 128, false}, grid, linear.name);
      },
      tmp.file("out"));
  const nlohmann::json config = test::read_json(tmp.path / "out" / "config.json");
  const nlohmann::json source_config =
      test::read_json(test::test_data() / "sotu-llama-16m" / "config.json");
  for (const auto& [key, value] : source_config.items()) CHECK(config.at(key) == value);
  const nlohmann::json& q = config.at("quantization_config");
  CHECK(q.at("quant_method") == "compressed-tensors");
  CHECK(q.at("format") == "pack-quantized");
  CHECK(q.at("quantization_status") == "compressed");
  CHECK(q.at("version") == "0.18.0");
  CHECK(q.at("kv_cache_scheme").is_null());
  CHECK(q.at("global_compression_ratio").is_null());
  CHECK(q.at("sparsity_config") == nlohmann::json::object());
  CHECK(q.at("transform_config") == nlohmann::json::object());
  CHECK(q.at("ignore") == nlohmann::json({skipped, "lm_head"}));
  REQUIRE(q.at("config_groups").size() == 1);
  const nlohmann::json& group = q.at("config_groups").at("group_0");
  CHECK(group.at("targets") == nlohmann::json({"Linear"}));
  CHECK(group.at("format") == "pack-quantized");
  CHECK(group.at("input_activations").is_null());
  CHECK(group.at("output_activations").is_null());
  const nlohmann::json expected_weights = {{"num_bits", 4},
                                           {"type", "int"},
                                           {"symmetric", false},
                                           {"strategy", "group"},
                                           {"group_size", 128},
                                           {"dynamic", false},
                                           {"actorder", nullptr},
                                           {"block_structure", nullptr},
                                           {"observer", "memoryless_minmax"},
                                           {"observer_kwargs", nlohmann::json::object()},
                                           {"scale_dtype", nullptr},
                                           {"zp_dtype", "torch.int8"}};
  CHECK(group.at("weights") == expected_weights);

  // Keys stay sorted, as transformers writes config.json, with quantization_config in place.
  std::vector<std::string> keys;
  const auto ordered =
      nlohmann::ordered_json::parse(read_file_bytes((tmp.path / "out" / "config.json").string()));
  for (const auto& item : ordered.items()) keys.push_back(item.key());
  CHECK(std::is_sorted(keys.begin(), keys.end()));

  // The skipped linear loads dense, the others packed; inspect says so.
  const Model packed = Model::open(tmp.file("out"));
  CHECK_FALSE(packed.packed().is_packed(skipped, packed.tensors()));
  CHECK(packed.packed().is_packed("model.layers.0.mlp.up_proj", packed.tensors()));
  CHECK_FALSE(packed.packed().is_packed("lm_head", packed.tensors()));
  CHECK(torch::equal(packed.load_block(0).linear("mlp.down_proj").weight,
                     source.load_block(0).linear("mlp.down_proj").weight));
  const std::string text = inspect_model(tmp.file("out"));
  INFO(text);
  CHECK_THAT(text, Catch::Matchers::Contains("compressed-tensors pack-quantized (version 0.18.0)"));
  CHECK_THAT(text, Catch::Matchers::Contains("41 of 43"));
  CHECK_THAT(text, Catch::Matchers::Contains(std::to_string(source.parameter_count())));
}

TEST_CASE("several schemes and a g_idx become several compressed-tensors groups", "[unit]") {
  const Model source = Model::open((test::test_data() / "sotu-llama-16m").string());
  TempDir tmp("export_ct_groups");
  const std::string with_g_idx = "model.layers.1.self_attn.o_proj";
  const auto weights = test::write_model(
      source, OutputFormat::kCompressedTensors,
      [&](const Linear& linear, const GridOptions& grid) -> std::optional<QuantizedWeight> {
        if (linear.name == with_g_idx) {
          // Act-order groups: column c in group perm[c] / 128 of a random permutation.
          const QuantScheme scheme{4, 128, true};
          torch::manual_seed(3);
          const torch::Tensor g_idx = torch::randperm(linear.weight.size(1), torch::kLong)
                                          .div(128, "floor")
                                          .to(torch::kInt32);
          const QuantGrid g = compute_grid(linear.weight, scheme, grid, linear.name);
          return quantize(linear.weight, g, scheme, g_idx, linear.name);
        }
        const bool early = linear.name.rfind("model.layers.0.", 0) == 0;
        const QuantScheme scheme = early ? QuantScheme{8, -1, true} : QuantScheme{4, 128, false};
        return quantize_rtn(linear.weight, scheme, grid, linear.name);
      },
      tmp.file("out"));
  REQUIRE(weights.at(with_g_idx).g_idx.has_value());
  const nlohmann::json q =
      test::read_json(tmp.path / "out" / "config.json").at("quantization_config");
  const nlohmann::json& groups = q.at("config_groups");
  REQUIRE(groups.size() == 3);
  CHECK(groups.at("group_0").at("weights").at("num_bits") == 8);
  CHECK(groups.at("group_0").at("weights").at("strategy") == "channel");
  CHECK(groups.at("group_0").at("weights").at("group_size").is_null());
  CHECK(groups.at("group_0").at("targets").size() == 7);
  CHECK(groups.at("group_0").at("targets").at(0) == "model.layers.0.self_attn.q_proj");
  CHECK(groups.at("group_1").at("weights").at("num_bits") == 4);
  CHECK(groups.at("group_1").at("targets").size() == 6 * 7 - 7 - 1);
  CHECK(groups.at("group_2").at("targets") == nlohmann::json({with_g_idx}));
  CHECK(groups.at("group_2").at("weights").at("actorder") == "group");
  CHECK(q.at("ignore") == nlohmann::json({"lm_head"}));
  const SafetensorsFile file((tmp.path / "out" / "model.safetensors").string());
  CHECK(file.contains(with_g_idx + ".weight_g_idx"));
  CHECK_FALSE(file.contains("model.layers.0.self_attn.q_proj.weight_zero_point"));
  CHECK_FALSE(file.contains("model.layers.1.self_attn.q_proj.weight_g_idx"));

  const Model packed = Model::open(tmp.file("out"));
  for (int b = 0; b < 2; ++b) {
    for (const Linear& linear : packed.load_block(b).linears) {
      INFO(linear.name);
      CHECK(torch::equal(linear.weight, dequantize(weights.at(linear.name))));
    }
  }
}

TEST_CASE("format names round-trip and unknown names list the valid ones", "[unit]") {
  for (const auto& name : output_format_names())
    CHECK(output_format_name(output_format_from_name(name)) == name);
  CHECK(output_format_names() ==
        std::vector<std::string>{"compressed-tensors", "gptq", "awq", "dense"});
  try {
    output_format_from_name("exl2");
    FAIL("no UserError");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()) ==
          "unknown output format 'exl2' (valid: compressed-tensors, gptq, awq, dense)");
  }
  const GridOptions ct = format_grid_options(OutputFormat::kCompressedTensors, torch::kBFloat16);
  CHECK(ct.scale_dtype == torch::kBFloat16);
  CHECK_FALSE(ct.avoid_qmin_zero_point);
  CHECK(format_grid_options(OutputFormat::kDense, torch::kFloat16).scale_dtype == torch::kFloat16);
  const GridOptions gptq = format_grid_options(OutputFormat::kGptq, torch::kBFloat16);
  CHECK(gptq.scale_dtype == torch::kFloat16);
  CHECK(gptq.avoid_qmin_zero_point);
  const GridOptions awq = format_grid_options(OutputFormat::kAwq, torch::kFloat32);
  CHECK(awq.scale_dtype == torch::kFloat16);
  CHECK_FALSE(awq.avoid_qmin_zero_point);
}

TEST_CASE("format_problems says what each format cannot hold", "[unit]") {
  const LinearPlan w4{"a", 256, 512, QuantScheme{4, 128, false}, false, std::nullopt, false};
  auto with = [](LinearPlan l, auto change) {
    change(l);
    return l;
  };
  // compressed-tensors and dense hold anything but a g_idx with per-channel scales.
  const auto odd = with(w4, [](auto& l) {
    l.scheme = QuantScheme{5, -1, true};
    l.out_features = 7;
  });
  CHECK(format_problems(OutputFormat::kCompressedTensors, {w4, odd}).empty());
  CHECK(format_problems(OutputFormat::kDense, {w4, odd}).empty());
  CHECK(format_problems(OutputFormat::kCompressedTensors,
                        {with(odd, [](auto& l) { l.g_idx = true; })})
            .size() == 1);
  // GPTQ: widths, whole words, one scheme; g_idx is fine.
  CHECK(format_problems(OutputFormat::kGptq, {w4, with(w4, [](auto& l) { l.g_idx = true; })})
            .empty());
  CHECK(format_problems(OutputFormat::kGptq, {with(w4, [](auto& l) { l.scheme->bits = 5; })})
            .size() == 1);
  const auto narrow = with(w4, [](auto& l) {
    l.in_features = 100;
    l.out_features = 36;
    l.scheme->group_size = -1;
  });
  CHECK(format_problems(OutputFormat::kGptq, {narrow}).size() == 2);  // 400 and 144 bits
  const auto two = format_problems(OutputFormat::kGptq, {w4, with(w4, [](auto& l) {
                                                           l.name = "b";
                                                           l.scheme->bits = 8;
                                                         })});
  REQUIRE(two.size() == 1);
  CHECK_THAT(two[0], Catch::Matchers::Contains("one scheme"));
  // AWQ: 4 bits, out % 8, no g_idx, one scheme.
  CHECK(format_problems(OutputFormat::kAwq, {w4}).empty());
  const auto bad = with(w4, [](auto& l) {
    l.scheme->bits = 3;
    l.out_features = 12;
    l.g_idx = true;
  });
  CHECK(format_problems(OutputFormat::kAwq, {bad}).size() == 3);
  CHECK(format_problems(OutputFormat::kAwq,
                        {w4, with(w4, [](auto& l) { l.scheme->symmetric = true; })})
            .size() == 1);
}

TEST_CASE("quantization configs presso cannot read are refused naming config.json", "[unit]") {
  const nlohmann::json base = test::read_json(test::test_data() / "sotu-llama-16m" / "config.json");
  struct Case {
    nlohmann::json quantization_config;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {{{"quant_method", "bitsandbytes"}, {"load_in_4bit", true}},
       {"'quantization_config.quant_method'", "'bitsandbytes' is not supported"}},
      {{{"quant_method", "gptq"},
        {"bits", 4},
        {"group_size", 128},
        {"checkpoint_format", "marlin"}},
       {"'quantization_config.checkpoint_format'", "'marlin'"}},
      {{{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 128}, {"format", "marlin"}},
       {"'quantization_config.format'", "'marlin'"}},
      {{{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"version", "gemv"}},
       {"'quantization_config.version'", "'gemv'"}},
      {{{"quant_method", "compressed-tensors"},
        {"format", "float-quantized"},
        {"config_groups",
         {{"group_0",
           {{"targets", {"Linear"}}, {"weights", {{"num_bits", 8}, {"type", "float"}}}}}}}},
       {"'quantization_config.format'", "'float-quantized'"}},
      {{{"quant_method", "compressed-tensors"},
        {"format", "pack-quantized"},
        {"version", "0.12.2"},
        {"config_groups",
         {{"group_0",
           {{"targets", {"Linear"}}, {"weights", {{"num_bits", 3}, {"group_size", 128}}}}}}}},
       {"num_bits", "0.12.2"}},
  };
  for (const Case& c : cases) {
    INFO(c.quantization_config.dump());
    TempDir tmp("export_unsupported");
    nlohmann::json config = base;
    config["quantization_config"] = c.quantization_config;
    tmp.write("config.json", config.dump(2));
    try {
      Model::open(tmp.path.string());
      FAIL("no UserError");
    } catch (const UserError& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(e.exit_code() == 2);
      CHECK_THAT(message, Catch::Matchers::Contains("config.json"));
      for (const auto& needle : c.needles) CHECK_THAT(message, Catch::Matchers::Contains(needle));
    }
  }
}

TEST_CASE("compressed-tensors re: targets and ignore entries match from the start of the name",
          "[unit]") {
  const Model source = Model::open((test::test_data() / "sotu-llama-16m").string());
  TempDir tmp("export_ct_regex");
  const std::string skipped = "model.layers.0.mlp.down_proj";
  const auto weights = test::write_model(
      source, OutputFormat::kCompressedTensors,
      [&](const Linear& linear, const GridOptions& grid) -> std::optional<QuantizedWeight> {
        if (linear.name == skipped) return std::nullopt;
        return quantize_rtn(linear.weight, {4, 128, true}, grid, linear.name);
      },
      tmp.file("out"));
  const fs::path config_path = tmp.path / "out" / "config.json";
  nlohmann::json config = test::read_json(config_path);
  auto rewrite = [&](const nlohmann::json& targets, const nlohmann::json& ignore) {
    config["quantization_config"]["config_groups"]["group_0"]["targets"] = targets;
    config["quantization_config"]["ignore"] = ignore;
    tmp.write("out/config.json", config.dump(2));
  };
  // Python's re.match: anchored at the start, not at the end.
  rewrite({"re:model\\.layers\\.\\d+\\.(self_attn|mlp)\\."},
          {"re:model\\.layers\\.0\\.mlp\\.down", "lm_head"});
  const Model packed = Model::open(tmp.file("out"));
  CHECK_FALSE(packed.packed().is_packed(skipped, packed.tensors()));
  CHECK_FALSE(packed.packed().is_packed("lm_head", packed.tensors()));
  for (const Linear& linear : packed.load_block(0).linears) {
    INFO(linear.name);
    CHECK(torch::equal(linear.weight, linear.name == skipped
                                          ? source.load_block(0).linear("mlp.down_proj").weight
                                          : dequantize(weights.at(linear.name))));
  }
  // An unanchored pattern does not match from the start: the linear counts as packed, and its
  // packed tensors are missing.
  rewrite({"Linear"}, {"re:mlp\\.down_proj", "lm_head"});
  const Model unanchored = Model::open(tmp.file("out"));
  CHECK(unanchored.packed().is_packed(skipped, unanchored.tensors()));
  try {
    unanchored.load_block(0);
    FAIL("no UserError");
  } catch (const UserError& e) {
    CHECK_THAT(std::string(e.what()),
               Catch::Matchers::Contains("'" + skipped + ".weight_shape' is missing"));
  }
  rewrite({"re:model.layers.(unclosed"}, {"lm_head"});
  try {
    Model::open(tmp.file("out"));
    FAIL("no UserError");
  } catch (const UserError& e) {
    CHECK_THAT(std::string(e.what()),
               Catch::Matchers::Contains("'quantization_config.config_groups.group_0.targets'"));
  }
}

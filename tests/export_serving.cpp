// GPTQ and AWQ outputs as their loaders and serving engines want them — float16 throughout, AWQ
// zero points always, asymmetric GPTQ as gptq_v2 — and the serving table's verdict per format ×
// scheme (lib/export/serving.h). Shipped recipes, eval and the CLI: e2e_serving.cpp.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/catch_torch.h"
#include "lib/common/errors.h"
#include "lib/export/checkpoint_writer.h"
#include "lib/export/serving.h"
#include "lib/io/safetensors.h"
#include "lib/model/inspect.h"
#include "lib/model/model.h"
#include "tests/export_helpers.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

using namespace presso;
using presso::test::TempDir;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kModel = presso::test::test_data() / "sotu-llama-16m";

const EngineVerdict& engine(const ServingVerdict& verdict, const std::string& name) {
  for (const auto& e : verdict.engines)
    if (e.engine == name) return e;
  FAIL("no verdict for " << name << " in " << verdict_text(verdict));
  throw std::logic_error("unreachable");
}

json gptq_q(int bits, bool sym, const std::string& format) {
  return {{"quant_method", "gptq"}, {"bits", bits},           {"group_size", 128},
          {"sym", sym},             {"desc_act", false},      {"checkpoint_format", format},
          {"meta", {{"quantizer", {"presso:0.1.0"}}}}};
}

json ct_q(int bits, bool sym, const std::string& actorder = "") {
  json weights = {{"num_bits", bits}, {"symmetric", sym},   {"group_size", 128},
                  {"strategy", "group"}, {"type", "int"}};
  if (!actorder.empty()) weights["actorder"] = actorder;
  return {{"quant_method", "compressed-tensors"},
          {"format", "pack-quantized"},
          {"config_groups",
           {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}, {"format", "pack-quantized"}}}}},
          {"sparsity_config", json::object()}};
}

ServingVerdict verdict_of(const std::string& dtype, const json& q) {
  return serving_verdict({{"dtype", dtype}, {"quantization_config", q}}, "config.json");
}

}  // namespace

TEST_CASE("the serving table says which engine runs each format and scheme", "[unit]") {
  SECTION("gptq: marlin for symmetric 4/8 bits in any 16-bit dtype") {
    const ServingVerdict v = verdict_of("bfloat16", gptq_q(4, true, "gptq"));
    CHECK(engine(v, "vLLM").support == ServingSupport::kFast);
    CHECK(engine(v, "GPTQModel / transformers").support == ServingSupport::kRuns);
    CHECK(v.fast());
  }
  SECTION("gptq asymmetric: plain gptq, float16 only, and GPTQModel wants v2") {
    const ServingVerdict v1_bf16 = verdict_of("bfloat16", gptq_q(4, false, "gptq"));
    CHECK(engine(v1_bf16, "vLLM").support == ServingSupport::kRefuses);
    CHECK_THAT(engine(v1_bf16, "vLLM").why, Catch::Matchers::Contains("--dtype float16"));
    CHECK(engine(v1_bf16, "GPTQModel / transformers").support == ServingSupport::kRefuses);
    const ServingVerdict v2_fp16 = verdict_of("float16", gptq_q(4, false, "gptq_v2"));
    CHECK(engine(v2_fp16, "vLLM").support == ServingSupport::kRuns);
    CHECK(engine(v2_fp16, "GPTQModel / transformers").support == ServingSupport::kRuns);
    CHECK_FALSE(v2_fp16.fast());
    CHECK_THAT(verdict_text(v2_fp16), Catch::Matchers::Contains("none of the fast kernels"));
  }
  SECTION("awq: marlin needs zero points; without them plain awq, float16 only") {
    json q = {{"quant_method", "awq"}, {"bits", 4},         {"group_size", 128},
              {"zero_point", true},    {"version", "gemm"}};
    CHECK(verdict_of("bfloat16", q).fast());
    q["zero_point"] = false;
    CHECK(engine(verdict_of("float16", q), "vLLM").support == ServingSupport::kRuns);
    CHECK(engine(verdict_of("bfloat16", q), "vLLM").support == ServingSupport::kRefuses);
  }
  SECTION("compressed-tensors: zero points only at 4 and 8 bits, no sparsity targets") {
    CHECK(verdict_of("bfloat16", ct_q(4, false)).fast());
    CHECK(verdict_of("bfloat16", ct_q(8, true)).fast());
    const ServingVerdict w3 = verdict_of("bfloat16", ct_q(3, false));
    CHECK(engine(w3, "vLLM").support == ServingSupport::kRefuses);
    CHECK_THAT(engine(w3, "vLLM").why, Catch::Matchers::Contains("zero points only at 4 and 8"));
    json sparse = ct_q(4, true);
    sparse["sparsity_config"] = {{"format", "dense"}, {"targets", {"Linear"}}};
    CHECK(engine(verdict_of("bfloat16", sparse), "vLLM").support == ServingSupport::kRefuses);
    const ServingVerdict group = verdict_of("bfloat16", ct_q(4, true, "group"));
    CHECK(group.fast());
    REQUIRE(group.notes.size() == 1);
    CHECK_THAT(group.notes[0], Catch::Matchers::Contains("deprecated"));
  }
  SECTION("a plain checkpoint, and methods outside the table") {
    const ServingVerdict plain = serving_verdict({{"dtype", "bfloat16"}}, "config.json");
    CHECK_FALSE(plain.quantized());
    CHECK(plain.fast());
    const ServingVerdict fp8 = verdict_of("bfloat16", {{"quant_method", "fp8"}});
    CHECK(fp8.engines.empty());
    CHECK_THAT(fp8.summary, Catch::Matchers::Contains("not in presso's serving table"));
  }
}

TEST_CASE("gptq and awq configs carry the keys their loaders read", "[unit]") {
  const Model source = Model::open((test::test_data() / "sotu-llama-16m").string());
  TempDir tmp("export_gptq_awq");
  SECTION("gptq, with an act-order g_idx") {
    const std::string with_g_idx = "model.layers.2.mlp.down_proj";
    const auto weights = test::write_model(
        source, OutputFormat::kGptq,
        [&](const Linear& linear, const GridOptions& grid) -> std::optional<QuantizedWeight> {
          const QuantScheme scheme{4, 128, false};
          if (linear.name != with_g_idx) return quantize_rtn(linear.weight, scheme, grid);
          torch::manual_seed(5);
          const torch::Tensor g_idx = torch::randperm(linear.weight.size(1), torch::kLong)
                                          .div(128, "floor")
                                          .to(torch::kInt32);
          return quantize(linear.weight, compute_grid(linear.weight, scheme, grid), scheme, g_idx);
        },
        tmp.file("gptq"));
    const nlohmann::json q =
        test::read_json(tmp.path / "gptq" / "config.json").at("quantization_config");
    CHECK(q.at("quant_method") == "gptq");
    // Asymmetric: v2, which GPTQModel loads (it refuses a foreign asymmetric v1).
    CHECK(q.at("checkpoint_format") == "gptq_v2");
    CHECK(q.at("format") == "gptq_v2");
    CHECK(q.at("bits") == 4);
    CHECK(q.at("group_size") == 128);
    CHECK(q.at("sym") == false);
    CHECK(q.at("desc_act") == true);
    CHECK(q.at("lm_head") == false);
    CHECK(q.at("damp_percent") == 0.01);
    CHECK(q.at("true_sequential") == true);
    CHECK(q.at("static_groups") == false);
    const SafetensorsFile file((tmp.path / "gptq" / "model.safetensors").string());
    CHECK(file.contains("model.layers.0.self_attn.q_proj.g_idx"));  // always written
    const Model packed = Model::open(tmp.file("gptq"));
    CHECK(torch::equal(packed.load_block(2).linear("mlp.down_proj").weight,
                       dequantize(weights.at(with_g_idx))));
    const std::string text = inspect_model(tmp.file("gptq"));
    CHECK_THAT(text, Catch::Matchers::Contains("gptq (checkpoint_format gptq_v2): 4-bit "
                                               "asymmetric group 128, desc_act true"));
  }
  SECTION("awq names the linears it leaves dense in modules_to_not_convert") {
    const std::string skipped = "model.layers.5.self_attn.v_proj";
    test::write_model(
        source, OutputFormat::kAwq,
        [&](const Linear& linear, const GridOptions& grid) -> std::optional<QuantizedWeight> {
          if (linear.name == skipped) return std::nullopt;
          return quantize_rtn(linear.weight, {4, 64, true}, grid);
        },
        tmp.file("awq"));
    const nlohmann::json q =
        test::read_json(tmp.path / "awq" / "config.json").at("quantization_config");
    const nlohmann::json expected = {
        {"quant_method", "awq"}, {"version", "gemm"},   {"bits", 4},
        {"group_size", 64},      {"zero_point", true},  {"modules_to_not_convert", {skipped}}};
    CHECK(q == expected);
    const Model packed = Model::open(tmp.file("awq"));
    CHECK_FALSE(packed.packed().is_packed(skipped, packed.tensors()));
    // Left dense, in the output's float16.
    CHECK(torch::equal(packed.load_block(5).linear("self_attn.v_proj").weight,
                       source.load_block(5)
                           .linear("self_attn.v_proj")
                           .weight.to(torch::kFloat16)
                           .to(torch::kFloat32)));
  }
  SECTION("awq with every block linear quantized writes modules_to_not_convert null") {
    test::write_model(source, OutputFormat::kAwq, test::rtn_everywhere({4, 128, false}),
                      tmp.file("awq_all"));
    const nlohmann::json q =
        test::read_json(tmp.path / "awq_all" / "config.json").at("quantization_config");
    CHECK(q.at("modules_to_not_convert").is_null());
    CHECK(q.at("zero_point") == true);
  }
  SECTION("gptq refuses to leave block linears unquantized, and leaves nothing behind") {
    const std::string skipped = "model.layers.3.mlp.gate_proj";
    try {
      test::write_model(
          source, OutputFormat::kGptq,
          [&](const Linear& linear, const GridOptions& grid) -> std::optional<QuantizedWeight> {
            if (linear.name == skipped) return std::nullopt;
            return quantize_rtn(linear.weight, {4, 128, true}, grid);
          },
          tmp.file("gptq_partial"));
      FAIL("no UserError");
    } catch (const UserError& e) {
      const std::string message = e.what();
      CHECK_THAT(message, Catch::Matchers::Contains(skipped));
      CHECK_THAT(message, Catch::Matchers::Contains("compressed-tensors"));
    }
    CHECK_FALSE(fs::exists(tmp.path / "gptq_partial"));
    for (const auto& entry : fs::directory_iterator(tmp.path))
      CHECK(entry.path().filename().string().find("presso-tmp") == std::string::npos);
  }
}


TEST_CASE("gptq and awq outputs are float16 throughout, as their fast kernels need", "[unit]") {
  const Model source = Model::open(kModel.string());
  TempDir tmp("export_fp16");
  for (const auto& [format, scheme] :
       std::vector<std::pair<OutputFormat, QuantScheme>>{{OutputFormat::kGptq, {4, 128, true}},
                                                         {OutputFormat::kAwq, {4, 128, true}}}) {
    const std::string out = tmp.file(output_format_name(format));
    INFO(out);
    test::write_model(source, format, test::rtn_everywhere(scheme), out);
    const json config = test::read_json(fs::path(out) / "config.json");
    CHECK(config.at("dtype") == "float16");  // the source's key (transformers 5), replaced
    CHECK_FALSE(config.contains("torch_dtype"));
    const SafetensorsFile file((fs::path(out) / "model.safetensors").string());
    for (const auto& name : file.names()) {
      const torch::Tensor t = file.load(name);
      if (t.is_floating_point()) CHECK(t.scalar_type() == torch::kFloat16);
    }
    const json& q = config.at("quantization_config");
    if (format == OutputFormat::kGptq) {
      CHECK(q.at("checkpoint_format") == "gptq");  // symmetric: v1, read by every GPTQ loader
      CHECK(q.at("sym") == true);
    } else {
      CHECK(q.at("zero_point") == true);  // symmetric, stored with zeros of 8
      CHECK(file.load("model.layers.0.mlp.up_proj.qzeros").eq(int32_t(0x88888888u)).all().item<bool>());
    }
    CHECK(serving_verdict_of_dir(out).fast());
  }
}


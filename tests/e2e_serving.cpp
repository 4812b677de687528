// The serving table end to end: every shipped recipe's plan gets the loader fields the table asks
// for, compress prints the verdict before any work (and refuses with --strict-serving),
// `presso serve-check` reads an output, and presso eval of a GPTQ / AWQ output equals the
// perplexity with the scales cast as the serving engine casts them.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/catch_torch.h"
#include "lib/compress/compression_plan.h"
#include "lib/export/serving.h"
#include "lib/io/safetensors.h"
#include "lib/model/model.h"
#include "passes/registry.h"
#include "tests/cli_runner.h"
#include "tests/compress_helpers.h"
#include "tests/export_helpers.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

using namespace presso;
using presso::test::TempDir;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kModel = presso::test::test_data() / "sotu-llama-16m";
const fs::path kConfigs = presso::test::test_data() / ".." / ".." / "configs";

}  // namespace

TEST_CASE("presso eval of a gptq or awq output equals the perplexity with the engine's scale cast",
          "[e2e]") {
  // vLLM loads the scales into parameters of config.json's dtype; GPTQ / AWQ outputs are
  // float16 throughout, so that cast is exact and the served model is the one presso measures.
  const Model source = Model::open(kModel.string());
  const std::string eval = (presso::test::test_data() / "eval.txt").string();
  TempDir tmp("export_engine_cast");
  for (const OutputFormat format : {OutputFormat::kGptq, OutputFormat::kAwq}) {
    const std::string out = tmp.file(output_format_name(format));
    INFO(out);
    test::write_model(source, format, test::rtn_everywhere({4, 128, false}), out);
    const json config = test::read_json(fs::path(out) / "config.json");
    const json& q = config.at("quantization_config");
    REQUIRE(config.at("dtype") == "float16");
    // The same directory with every packed linear decoded by the independent reader, scales
    // cast to config.json's dtype, as a plain checkpoint.
    const std::string cast_dir = tmp.file(std::string(output_format_name(format)) + "-cast");
    fs::create_directories(cast_dir);
    const SafetensorsFile file((fs::path(out) / "model.safetensors").string());
    SafetensorsWriter writer(cast_dir + "/model.safetensors", {{"format", "pt"}});
    bool bf16_changes = false;
    for (const auto& name : file.names()) {
      const std::string suffix = ".qweight";
      if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        const std::string linear = name.substr(0, name.size() - suffix.size());
        writer.add(linear + ".weight", test::read_packed_linear(file, q, linear, torch::kFloat16));
        // The bf16 cast (an output that kept config.json's bfloat16) is another model.
        bf16_changes = bf16_changes ||
                       !torch::equal(test::read_packed_linear(file, q, linear, torch::kBFloat16),
                                     test::read_packed_linear(file, q, linear));
      } else if (name.find(".qzeros") == std::string::npos &&
                 name.find(".scales") == std::string::npos &&
                 name.find(".g_idx") == std::string::npos) {
        writer.add(name, file.load(name));
      }
    }
    writer.finish();
    CHECK(bf16_changes);
    json plain = config;
    plain.erase("quantization_config");
    std::ofstream(cast_dir + "/config.json") << plain.dump(2);
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(fs::path(out) / name, fs::path(cast_dir) / name);
    const double presso_ppl = test::perplexity(out, eval, 2, 128);
    const double engine_ppl = test::perplexity(cast_dir, eval, 2, 128);
    std::printf("  %s: presso eval ppl %.6f, engine-cast ppl %.6f\n", output_format_name(format),
                presso_ppl, engine_ppl);
    CHECK(presso_ppl == engine_ppl);
  }
}

TEST_CASE("every shipped recipe's plan carries the fields its loaders read, per the table",
          "[unit]") {
  const Model model = Model::open(kModel.string());
  const fs::path configs = kConfigs;
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(configs)) {
    if (entry.path().extension() != ".yaml") continue;
    const CompressionPlan job =
        plan_compression(entry.path().string(), model, pass_registry(), OutputFormat::kDense, true);
    for (const auto& spec : output_formats()) {
      if (spec.bits.empty() || !checkpoint_problems(spec.id, model, job.stored).empty()) continue;
      INFO(entry.path().filename().string() << " as " << spec.name);
      const auto q = spec.quantization_config({model, job.stored, 0.0});
      REQUIRE(q);
      const ServingVerdict verdict = plan_serving_verdict(spec.id, model, job.stored);
      std::optional<QuantScheme> scheme;
      bool g_idx = false, pruned = false;
      for (const auto& linear : job.stored) {
        if (linear.scheme) scheme = linear.scheme;
        g_idx = g_idx || linear.g_idx;
        pruned = pruned || linear.sparsity.has_value();
      }
      if (spec.id == OutputFormat::kGptq) {
        REQUIRE(scheme);
        CHECK(verdict.summary.find("dtype float16") != std::string::npos);
        CHECK(q->at("sym") == scheme->symmetric);
        CHECK(q->at("desc_act") == g_idx);
        CHECK(q->at("checkpoint_format") == (scheme->symmetric ? "gptq" : "gptq_v2"));
        const bool marlin = scheme->symmetric && (scheme->bits == 4 || scheme->bits == 8);
        CHECK(verdict.fast() == marlin);
        if (!marlin && scheme->bits == 4) CHECK_FALSE(fast_formats(model, job.stored).empty());
      } else if (spec.id == OutputFormat::kAwq) {
        CHECK(q->at("zero_point") == true);
        CHECK(verdict.fast());
      } else {
        const json groups = q->value("config_groups", json::object());
        for (const auto& [name, group] : groups.items()) {
          const json& w = group.at("weights");
          // Every presso recipe's act-order is stored as g_idx only with actorder group.
          CHECK(w.at("actorder").is_null() == !g_idx);
          const int bits = w.at("num_bits");
          const bool vllm = (bits == 4 || bits == 8) && !pruned;
          CHECK(verdict.fast() == vllm);
        }
      }
      ++checked;
    }
  }
  CHECK(checked > 20);
}

TEST_CASE("compress prints the verdict before work and refuses with --strict-serving", "[e2e]") {
  TempDir tmp("serve_cli");
  const std::string args = kModel.string() + " --recipe " +
                           (kConfigs / "rtn-w4g128-asym.yaml").string() +
                           " --format gptq --no-progress -o ";
  const auto strict = presso::test::run_cli("compress " + args + tmp.file("strict") + " --strict-serving");
  CHECK(strict.exit_code == 2);
  CHECK_THAT(strict.output, Catch::Matchers::Contains("--format compressed-tensors or --format awq"));
  CHECK_FALSE(fs::exists(tmp.file("strict")));
  const auto warned = presso::test::run_cli("compress " + args + tmp.file("out"));
  REQUIRE(warned.exit_code == 0);
  CHECK(warned.output.find("serving: gptq 4-bit asymmetric") < warned.output.find("compressed 42"));
  const auto check = presso::test::run_cli("serve-check " + tmp.file("out"));
  CHECK(check.exit_code == 0);
  CHECK_THAT(check.output, Catch::Matchers::Contains("gptq_v2"));
  CHECK(presso::test::run_cli("serve-check " + tmp.file("out") + " --strict").exit_code == 1);
  CHECK(presso::test::run_cli("serve-check " + tmp.file("missing")).exit_code == 2);
}

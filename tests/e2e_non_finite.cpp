// A model whose output is NaN or infinite is an error, never a number: `presso eval` exits 2
// naming the first layer whose output is not finite (no gate can pass it, no report is written),
// and `presso compress` exits 2 naming the block where the calibration activations stop being
// finite, leaving no output behind.
#include <filesystem>
#include <string>

#include "tests/catch_torch.h"
#include "tests/cli_runner.h"
#include "tests/crafted_models.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using namespace presso::test;

const std::string kProtocol = " --seqlen 64 --max-windows 2 --no-progress";

// A copy of the shipped model under `dir` whose tensor `name` is all NaN.
std::string model_with_nan(const TempDir& dir, const std::string& name) {
  const std::string model = copy_shipped_model(dir.path / "model", true);
  fill_with_nan(model + "/model.safetensors", name);
  return model;
}

CliResult expect_refused(const std::string& args, const std::string& named) {
  CliResult result = run_cli(args);
  INFO(args << "\n" << result.output);
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.output, Catch::Contains("not finite") && Catch::Contains(named));
  return result;
}

}  // namespace

TEST_CASE("presso eval exits 2 naming the first block whose output is not finite", "[e2e]") {
  TempDir dir("nan_block");
  const std::string model = model_with_nan(dir, "model.layers.2.post_attention_layernorm.weight");
  const std::string eval = "eval " + model + " --data " + kShippedEval + kProtocol;
  expect_refused(eval, "block 2 (model.layers.2)");

  // No gate passes it, nor fails it as a regression: the run is refused and writes no report.
  const std::string base = dir.file("base.json");
  REQUIRE(
      run_cli("eval " + kShippedModel + " --data " + kShippedEval + kProtocol + " --json " + base)
          .exit_code == 0);
  const std::string report = dir.file("report.json");
  expect_refused(eval + " --baseline " + base + " --max-increase 1% --json " + report, "block 2");
  expect_refused(eval + " --max-ppl 1e9 --json " + report, "block 2");
  CHECK_FALSE(fs::exists(report));
}

TEST_CASE("presso eval names the final norm or lm_head when only the head is not finite", "[e2e]") {
  {
    TempDir dir("nan_norm");
    const std::string model = model_with_nan(dir, "model.norm.weight");
    expect_refused("eval " + model + " --data " + kShippedEval + kProtocol,
                   "the final norm (model.norm)");
  }
  TempDir dir("nan_head");
  const std::string model = model_with_nan(dir, "lm_head.weight");
  const CliResult result =
      expect_refused("eval " + model + " --data " + kShippedEval + kProtocol, "is lm_head");
  CHECK_THAT(result.output, !Catch::Contains("block"));
}

TEST_CASE("NaN scales in a compressed checkpoint make presso eval exit 2 naming their block",
          "[e2e]") {
  TempDir dir("nan_scales");
  const std::string out = dir.file("out");
  const std::string recipe = one_linear_recipe(dir, "rtn", "layers.4.self_attn.o_proj");
  const CliResult compressed = run_cli("compress " + kShippedModel + " --recipe " + recipe +
                                       " -o " + out + " --no-progress");
  INFO(compressed.output);
  REQUIRE(compressed.exit_code == 0);
  fill_with_nan(out + "/model.safetensors", "model.layers.4.self_attn.o_proj.weight_scale");
  expect_refused("eval " + out + " --data " + kShippedEval + kProtocol, "block 4 (model.layers.4)");
}

TEST_CASE("compress exits 2 naming the block whose calibration activations are not finite",
          "[e2e]") {
  TempDir dir("nan_compress");
  const std::string model = model_with_nan(dir, "model.layers.2.post_attention_layernorm.weight");
  const std::string calib = " --calib " + kShippedCalib + " --nsamples 2 --seqlen 64 --no-progress";
  // RTN of block 0 gathers nothing; the activations run through block 2 to the end and stop
  // being finite at its output.
  const std::string rtn = one_linear_recipe(dir, "rtn", "layers.0.mlp.down_proj");
  expect_refused("compress " + model + " --recipe " + rtn + calib + " -o " + dir.file("out"),
                 "the output of block 2 (model.layers.2)");
  // GPTQ of block 2 gathers its inputs there: the first non-finite one is named, not a Hessian.
  const std::string gptq = one_linear_recipe(dir, "gptq", "layers.2.mlp.down_proj");
  expect_refused("compress " + model + " --recipe " + gptq + calib + " -o " + dir.file("out"),
                 "in block 2 (model.layers.2), the input of 'model.layers.2.mlp.");
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    const std::string name = entry.path().filename().string();
    CHECK((name == "model" || name == "rtn.yaml" || name == "gptq.yaml"));
  }
}

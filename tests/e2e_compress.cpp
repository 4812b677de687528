// `presso compress`, `presso recipe check` and `presso list` as a user runs them: exit codes,
// messages and what lands on disk.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <string>


#include "tests/cli_runner.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using presso::test::TempDir;

namespace {

using presso::test::run_cli;

const std::string kModel = (presso::test::test_data() / "sotu-llama-16m").string();
const std::string kCalib = (presso::test::test_data() / "calib.txt").string();
const std::string kEval = (presso::test::test_data() / "eval.txt").string();
const std::string kConfigs = (presso::test::test_data() / ".." / ".." / "configs").string();

}  // namespace

TEST_CASE("presso --help and list show compress, recipes and the passes", "[e2e]") {
  auto help = run_cli("--help");
  CHECK(help.exit_code == 0);
  for (const char* sub : {"compress", "recipe", "list", "eval"}) {
    CHECK_THAT(help.output, Catch::Contains(sub));
  }
  auto list = run_cli("list");
  CHECK(list.exit_code == 0);
  for (const char* text : {"rtn", "group_size", "compressed-tensors", "gptq", "awq", "dense",
                           "llama", "opt", "gpt2"}) {
    CHECK_THAT(list.output, Catch::Contains(text));
  }
  auto compress_help = run_cli("compress --help");
  CHECK(compress_help.exit_code == 0);
  CHECK_THAT(compress_help.output, Catch::Contains("--nsamples"));
}

TEST_CASE("recipe check prints the canonical recipe and, with a model, the plan", "[e2e]") {
  const std::string recipe = kConfigs + "/rtn-w4g128-asym.yaml";
  auto plain = run_cli("recipe check " + recipe);
  CHECK(plain.exit_code == 0);
  CHECK_THAT(plain.output, Catch::Contains("symmetric: false"));
  auto plan = run_cli("recipe check " + recipe + " --model " + kModel);
  CHECK(plan.exit_code == 0);
  CHECK_THAT(plan.output, Catch::Contains("model.layers.5.mlp.down_proj"));
  auto awq = run_cli("recipe check " + kConfigs + "/rtn-w3g128-asym.yaml --model " + kModel +
                     " --format awq");
  CHECK(awq.exit_code == 2);
  CHECK_THAT(awq.output, Catch::Contains("--format awq"));

  TempDir dir("recipe_check");
  const std::string bad = dir.write("bad.yaml", "passes:\n  - rtn:\n      bits: 9\n      grop_size: 64\n");
  auto result = run_cli("recipe check " + bad);
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.output, Catch::Contains("bad.yaml:3"));
  CHECK_THAT(result.output, Catch::Contains("bad.yaml:4"));
  CHECK_THAT(result.output, Catch::Contains("did you mean 'group_size'"));
}

TEST_CASE("compress from the shell: output evaluates, bad input exits 2 and writes nothing",
          "[e2e]") {
  TempDir dir("cli_compress");
  const std::string out = dir.file("out");
  auto ok = run_cli("compress " + kModel + " --recipe " + kConfigs + "/rtn-w4g128.yaml --calib " +
                    kCalib + " --nsamples 4 --seqlen 64 -o " + out + " --no-progress");
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Catch::Contains("relative output error"));
  auto eval = run_cli("eval " + out + " --data " + kEval + " --seqlen 128 --max-windows 2");
  CHECK(eval.exit_code == 0);
  CHECK_THAT(eval.output, Catch::Contains("ppl"));

  auto exists = run_cli("compress " + kModel + " --recipe " + kConfigs + "/rtn-w4g128.yaml -o " + out);
  CHECK(exists.exit_code == 2);
  CHECK_THAT(exists.output, Catch::Contains("--overwrite"));

  const std::string bad = dir.write("bad.yaml", "passes:\n  - rtn: {bits: four}\n");
  auto refused = run_cli("compress " + kModel + " --recipe " + bad + " -o " + dir.file("new"));
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains("bad.yaml:2"));
  CHECK_FALSE(fs::exists(dir.file("new")));

  auto format = run_cli("compress " + kModel + " --recipe " + kConfigs +
                        "/rtn-w4g128.yaml --format ggml -o " + dir.file("new"));
  CHECK(format.exit_code == 2);
  CHECK_THAT(format.output, Catch::Contains("compressed-tensors"));
}

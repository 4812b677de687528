// Where the commands write, as a user's typo meets it: outputs that collide or lie in the input are
// refused before any work with nothing created, --overwrite deletes only what presso wrote,
// killed runs' temporary directories are cleaned up, and lengths or shapes the model cannot take
// are refused up front.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/catch_torch.h"
#include "tests/cli_runner.h"
#include "tests/crafted_models.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using namespace presso::test;

CliResult expect_exit(const std::string& args, int exit_code, const std::string& expected) {
  CliResult result = run_cli(args);
  INFO(args << "\n" << result.output);
  CHECK(result.exit_code == exit_code);
  CHECK_THAT(result.output, Catch::Contains(expected));
  return result;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::string quick_recipe(const TempDir& dir) {
  return one_linear_recipe(dir, "rtn", "layers.0.mlp.down_proj");
}

// The id of a process that has exited (and been reaped): no process has it now.
pid_t dead_pid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  REQUIRE(child > 0);
  waitpid(child, nullptr, 0);
  return child;
}

}  // namespace

TEST_CASE("compress refuses colliding outputs or one inside the model before any work", "[e2e]") {
  TempDir dir("outputs_collide");
  const std::string model = copy_shipped_model(dir.path / "model", false);
  const std::string compress =
      "compress " + model + " --recipe " + quick_recipe(dir) + " --no-progress";
  const std::vector<std::string> before = entries(dir.path);
  expect_exit(compress + " -o " + dir.file("x") + " --dense-copy " + dir.file("x") + "/", 2,
              "are the same path");
  expect_exit(compress + " -o " + dir.file("nest") + " --dense-copy " + dir.file("nest/dense"), 2,
              "--dense-copy " + dir.file("nest/dense") + " lies inside -o " + dir.file("nest"));
  expect_exit(compress + " -o " + model + "/sub", 2, "lies inside the model " + model);
  // A model inside the output would be replaced with it.
  expect_exit(compress + " -o " + dir.path.string() + " --overwrite", 2,
              "writing the output would replace it");
  CHECK(entries(dir.path) == before);
  CHECK(entries(model) == entries(kShippedModel));
}

TEST_CASE("compress --overwrite replaces only an empty directory or an earlier presso output",
          "[e2e]") {
  TempDir dir("outputs_overwrite");
  const std::string compress =
      "compress " + kShippedModel + " --recipe " + quick_recipe(dir) + " --no-progress -o ";
  const fs::path mine = dir.path / "home";
  fs::create_directories(mine / "photos");
  std::ofstream(mine / "notes.txt") << "mine";
  expect_exit(compress + mine.string() + " --overwrite", 2, "presso_report.json");
  CHECK(entries(mine) == std::vector<std::string>{"notes.txt", "photos"});

  const fs::path out = dir.path / "out";
  fs::create_directories(out);  // an empty directory is taken as it is
  expect_exit(compress + out.string(), 0, "wrote");
  expect_exit(compress + out.string(), 2, "--overwrite");
  std::ofstream(out / "stale.txt") << "from an earlier run";
  expect_exit(compress + out.string() + " --overwrite", 0, "wrote");  // an earlier presso output
  CHECK_FALSE(fs::exists(out / "stale.txt"));
  CHECK(fs::exists(out / "presso_report.json"));
}

TEST_CASE("compress removes the temporary directories of killed runs and says so", "[e2e]") {
  TempDir dir("outputs_stale");
  const fs::path stale = dir.path / ("old.presso-tmp-" + std::to_string(dead_pid()));
  const fs::path live = dir.path / ("other.presso-tmp-" + std::to_string(getpid()));
  fs::create_directories(stale / "adapter");
  std::ofstream(stale / "model.safetensors") << "half written";
  fs::create_directories(live);
  const CliResult result =
      expect_exit("compress " + kShippedModel + " --recipe " + quick_recipe(dir) +
                      " --no-progress -o " + dir.file("out"),
                  0, "removed " + stale.string());
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));  // its process (this test) is alive
  CHECK(fs::exists(dir.path / "out" / "model.safetensors"));
}

TEST_CASE("compress and eval refuse a --seqlen above max_position_embeddings", "[e2e]") {
  TempDir dir("outputs_seqlen");
  expect_exit(
      "eval " + kShippedModel + " --data " + kShippedEval + " --seqlen 1025 --max-windows 1", 2,
      "key 'max_position_embeddings'");
  expect_exit("compress " + kShippedModel + " --recipe " + quick_recipe(dir) + " --calib " +
                  kShippedCalib + " --nsamples 1 --seqlen 1025 -o " + dir.file("out"),
              2, "--seqlen 1025 is longer than the 1024 positions");
  CHECK_FALSE(fs::exists(dir.file("out")));
  // A position limit of 0 or below is itself an error.
  const std::string model = copy_shipped_model(dir.path / "model", false);
  set_config_key(model, "max_position_embeddings", 0);
  expect_exit("eval " + model + " --data " + kShippedEval + " --seqlen 64", 2,
              "key 'max_position_embeddings': must be > 0");
}

TEST_CASE("presso inspect exits 2 naming a tensor whose shape disagrees with config.json",
          "[e2e]") {
  TempDir dir("outputs_inspect");
  const std::string model = copy_shipped_model(dir.path / "model", false);
  set_config_key(model, "intermediate_size", 1000);
  const CliResult result = expect_exit("inspect " + model, 2,
                                       "tensor 'model.layers.0.mlp.gate_proj.weight' has shape "
                                       "[1024, 384], expected [1000, 384] from config.json");
  CHECK_THAT(result.output, Catch::Contains("18 tensors disagree"));
}

TEST_CASE("presso sweep refuses an output inside the model or a folder that is not a sweep's",
          "[e2e]") {
  TempDir dir("outputs_sweep");
  const std::string model = copy_shipped_model(dir.path / "model", false);
  const std::string sweep = "sweep " + quick_recipe(dir) + " --model " + model + " --calib " +
                            kShippedCalib + " --eval " + kShippedEval + " -o ";
  expect_exit(sweep + model + "/sweep", 2, "lies inside --model " + model);
  const fs::path mine = dir.path / "mine";
  fs::create_directories(mine);
  std::ofstream(mine / "notes.txt") << "mine";
  expect_exit(sweep + mine.string(), 2, "not the folder of an earlier presso sweep");
  CHECK(entries(mine) == std::vector<std::string>{"notes.txt"});
  CHECK(entries(model) == entries(kShippedModel));
}

TEST_CASE("presso eval refuses report paths that collide or cannot be written before it runs",
          "[e2e]") {
  TempDir dir("outputs_eval");
  const std::string data = dir.write("eval.txt", presso::read_file_bytes(kShippedEval));
  const std::string eval =
      "eval " + kShippedModel + " --data " + data + " --seqlen 64 --max-windows 1";
  expect_exit(eval + " --json " + dir.file("r") + " --save-logprobs " + dir.file("r"), 2,
              "are the same path");
  expect_exit(eval + " --json " + data, 2, "is --data " + data);
  expect_exit(eval + " --json " + dir.file("missing/r.json"), 2, "does not exist");
  expect_exit(eval + " --json " + dir.path.string(), 2, "is a directory");
  CHECK(presso::read_file_bytes(data) == presso::read_file_bytes(kShippedEval));
  CHECK(entries(dir.path) == std::vector<std::string>{"eval.txt"});
}

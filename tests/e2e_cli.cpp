// The presso binary end to end: exit codes, reports and error messages as a user sees them.
#include <catch2/catch.hpp>


#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/common/files.h"
#include "lib/common/version.h"
#include "tests/cli_runner.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;

namespace {

using presso::test::run_cli;

fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("presso-e2e-" + name);
  presso::remove_tree(dir.string());
  fs::create_directories(dir);
  return dir;
}

const std::string kModel = (presso::test::test_data() / "sotu-llama-16m").string();
const std::string kEval = (presso::test::test_data() / "eval.txt").string();

}  // namespace

TEST_CASE("presso --help lists the subcommands", "[e2e]") {
  const auto result = run_cli("--help");
  CHECK(result.exit_code == 0);
  for (const char* sub : {"eval", "inspect", "tokenize"}) CHECK_THAT(result.output, Catch::Contains(sub));
}

TEST_CASE("presso --version names the version, the commit and LibTorch", "[e2e]") {
  const auto result = run_cli("--version");
  CHECK(result.exit_code == 0);
  INFO(result.output);
  // The binary and this test are built from the same generated build_info.cpp.
  CHECK(result.output.rfind("presso " + presso::version_description() + "\n", 0) == 0);
  CHECK(std::string(presso::build_commit()).size() == 40);  // built in a git checkout
  CHECK_THAT(result.output, Catch::Contains("libtorch"));
}

TEST_CASE("presso eval rejects bad input with exit code 2 and a named cause", "[e2e]") {
  const auto dir = scratch_dir("bad");
  std::ofstream(dir / "no_ppl.json") << R"({"windows": 3})";
  std::ofstream(dir / "short.txt") << "too short";
  fs::create_directories(dir / "empty_model");
  const struct {
    std::string args;
    std::string expected;
  } cases[] = {
      {"eval " + (dir / "missing").string() + " --data " + kEval, "missing"},
      {"eval " + (dir / "empty_model").string() + " --data " + kEval, "config.json"},
      {"eval " + kModel + " --data " + kEval + " --device tpu", "--device"},
      {"eval " + kModel + " --data " + kEval + " --baseline " + (dir / "no_ppl.json").string(),
       "is missing"},
      {"eval " + kModel + " --data " + (dir / "short.txt").string(), "fewer than one window"},
      {"eval " + kModel + " --data " + kEval + " --max-increase 1%", "--baseline"},
      {"eval " + kModel + " --data " + kEval + " --seqlen 1", "seqlen"},
      {"eval " + kModel, "--data"},
  };
  for (const auto& c : cases) {
    const auto result = run_cli(c.args);
    INFO(c.args << "\n" << result.output);
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.output, Catch::Contains(c.expected));
  }
}

TEST_CASE("presso inspect describes the default model", "[e2e]") {
  const auto result = run_cli("inspect " + kModel);
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("llama"));
}

TEST_CASE("presso tokenize prints ids that round-trip", "[e2e]") {
  const auto result = run_cli("tokenize " + kModel + " 'Hello world' --format ids");
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK(result.output.find_first_not_of("0123456789 \n") == std::string::npos);
}

// Inputs that made the presso binary die with exit 3 and a c10 backtrace: calibration that cannot
// fit in memory must be exit 2 with the numbers, before anything is allocated.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>

#include "tests/cli_runner.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

TEST_CASE("compress with more calibration windows than memory holds exits 2 with the numbers",
          "[e2e]") {
  namespace fs = std::filesystem;
  presso::test::TempDir dir("nsamples_beyond_memory");
  const fs::path data = presso::test::test_data();
  const auto start = std::chrono::steady_clock::now();
  // 2^20 windows of 1024 tokens: 1.5 TiB of fp32 hidden states on the shipped 384-wide model.
  const auto result = presso::test::run_cli(
      "compress " + (data / "sotu-llama-16m").string() + " --recipe " +
      (data.parent_path().parent_path() / "configs" / "rtn-w4g128.yaml").string() + " --calib " +
      (data / "calib.txt").string() + " -o " + dir.file("out") +
      " --nsamples 1048576 --seqlen 1024");
  INFO(result.output);
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.output, Catch::Contains("--nsamples 1048576 x --seqlen 1024") &&
                                Catch::Contains("1536.00 GiB of float32 hidden states") &&
                                Catch::Contains("of memory available"));
  CHECK_FALSE(fs::exists(dir.file("out")));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
}

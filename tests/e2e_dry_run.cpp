// `presso compress --dry-run`: writes nothing, and its estimates hold against the real run of the
// same job on every fixture model — the peak host memory within 25 % of the measured peak
// (presso_report.json's peak_rss_mib, the process's VmHWM), the output's size within 5 %.
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "lib/common/files.h"
#include "lib/io/weight_files.h"
#include "tests/catch_torch.h"
#include "tests/cli_runner.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using presso::test::run_cli;
using presso::test::TempDir;

namespace {

const fs::path kConfigs = presso::test::test_data() / ".." / ".." / "configs";

// The first number after `label` in the dry run's output.
double number_after(const std::string& output, const std::string& label) {
  std::smatch match;
  const std::regex pattern(label + ":? (?:of )?(?:about )?([0-9.]+)");
  REQUIRE(std::regex_search(output, match, pattern));
  return std::stod(match[1]);
}

}  // namespace

TEST_CASE("the dry run's memory and size estimates hold against the real run", "[e2e]") {
  auto fixtures = presso::test::fixtures_or_skip();
  if (!fixtures) return;
  const std::string calib = (*fixtures / "text/calib.txt").string();
  struct Job {
    const char* recipe;
    const char* calibration;  // --nsamples and --seqlen, empty for none
  };
  const Job jobs[] = {{"rtn-w4g128.yaml", ""},
                      {"gptq-w4g128.yaml", "--nsamples 32 --seqlen 512"},
                      {"sparsegpt-50.yaml", "--nsamples 16 --seqlen 1024"}};
  for (const auto& model : presso::test::checkpoint_dirs(*fixtures, "models")) {
    for (const Job& job : jobs) {
      TempDir dir("dry_run");
      const fs::path out = dir.path / "out";
      std::string args = "compress " + model.string() + " --recipe " +
                         (kConfigs / job.recipe).string() + " -o " + out.string() +
                         " --no-progress";
      if (*job.calibration) args += " --calib " + calib + " " + job.calibration;
      INFO(model.filename().string() << " " << job.recipe << " " << job.calibration);

      const auto dry = run_cli(args + " --dry-run");
      INFO(dry.output);
      REQUIRE(dry.exit_code == 0);
      CHECK_FALSE(fs::exists(out));
      CHECK(fs::is_empty(dir.path));
      const double estimated_mib = number_after(dry.output, "estimated peak host memory");
      const double estimated_size_mib = number_after(dry.output, "checkpoint");

      const auto real = run_cli(args);
      REQUIRE(real.exit_code == 0);
      const auto report =
          nlohmann::json::parse(presso::read_file_bytes((out / "presso_report.json").string()));
      const double measured_mib = report.at("peak_rss_mib").get<double>();
      const double size_mib =
          static_cast<double>(presso::weight_file_bytes(out.string())) / (1 << 20);
      INFO("peak host memory: estimated " << estimated_mib << " MiB, measured " << measured_mib
                                          << " MiB; size: estimated " << estimated_size_mib
                                          << " MiB, written " << size_mib << " MiB");
      CHECK(std::abs(estimated_mib / measured_mib - 1.0) <= 0.25);
      CHECK(std::abs(estimated_size_mib / size_mib - 1.0) <= 0.05);
    }
  }
}

TEST_CASE("the dry run refuses what the real run refuses, with exit 2", "[e2e]") {
  auto fixtures = presso::test::fixtures_or_skip();
  if (!fixtures) return;
  TempDir dir("dry_run_refusal");
  const fs::path model = *fixtures / "models/sotu-llama-16m";
  const auto result =
      run_cli("compress " + model.string() + " --recipe " +
              (kConfigs / "gptq-w4g128.yaml").string() + " -o " + dir.file("out") + " --dry-run");
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.output, Catch::Contains("calibration"));
  const auto inside = run_cli("compress " + model.string() + " --recipe " +
                              (kConfigs / "rtn-w4g128.yaml").string() + " -o " +
                              (model / "sub").string() + " --dry-run");
  CHECK(inside.exit_code == 2);
  CHECK_THAT(inside.output, Catch::Contains("inside"));
}

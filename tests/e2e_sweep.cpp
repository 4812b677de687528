// `presso sweep` over six shipped recipes and a broken one: the broken one is reported and the
// sweep goes on; results.csv, results.json and plot.svg (rendered and looked at) are written; a
// second run reuses every output without compressing again.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lib/common/files.h"
#include "lib/common/svg_chart.h"
#include "tests/catch_torch.h"
#include "tests/cli_runner.h"
#include "tests/fixtures.h"
#include "tests/svg_raster.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;

namespace {

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("presso sweep compares six recipes and survives a broken one and resumes", "[e2e]") {
  const fs::path data = presso::test::test_data();
  const fs::path configs = data / ".." / ".." / "configs";
  presso::test::TempDir dir("sweep");
  // Recipes without calibration keep this fast (the calibration windows only measure output
  // errors); the sweep treats every recipe alike.
  std::string recipes;
  for (const char* name : {"rtn-w4g128", "rtn-w3g128-asym", "rtn-w8-per-channel",
                           "rtn-w4-per-channel-asym", "magnitude-50", "magnitude-2of4"})
    recipes += (configs / (std::string(name) + ".yaml")).string() + " ";
  const std::string broken = dir.write("broken.yaml", "passes:\n  - rtn: {bits: 4, colour: red}\n");
  const std::string out = dir.file("sweep");
  const std::string common =
      " --model " + (data / "sotu-llama-16m").string() + " --calib " +
      (data / "calib.txt").string() + " --eval " + (data / "eval.txt").string() +
      " --nsamples 4 --seqlen 64 --eval-seqlen 64 --eval-windows 2 -o " + out;

  const auto first = presso::test::run_cli("sweep " + recipes + broken + common);
  INFO(first.output);
  CHECK(first.exit_code == 2);  // the broken recipe's bad key
  CHECK_THAT(first.output, Catch::Contains("[7/7] broken: FAILED") && Catch::Contains("colour"));
  CHECK(count_of(first.output, ": compressing") == 7);
  CHECK_THAT(first.output, Catch::Contains("ETA"));

  const auto results = nlohmann::json::parse(presso::read_file_bytes(out + "/results.json"));
  REQUIRE(results["runs"].size() == 7);
  CHECK(results["failed"] == 1);
  const double original_ppl = results["original"]["ppl"].get<double>();
  for (const auto& run : results["runs"]) {
    INFO(run.dump());
    if (run["name"] == "broken") {
      CHECK(run["status"] == "failed");
      continue;
    }
    CHECK(run["status"] == "compressed");
    // Pruned weights stored dense take as much room as the original's.
    CHECK(run["bits_per_weight"].get<double>() <=
          results["original"]["bits_per_weight"].get<double>());
    CHECK(run["ppl"].get<double>() > 0.9 * original_ppl);
    CHECK(run["mean_kl"].get<double>() > 0);
  }
  std::istringstream csv(presso::read_file_bytes(out + "/results.csv"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  REQUIRE(lines.size() == 9);  // header, the original, seven recipes
  CHECK(lines[0].rfind("name,recipe,status,bits_per_weight", 0) == 0);
  CHECK(lines[1].rfind("original,", 0) == 0);

  // The plot: six markers and the original's line, drawn inside the panels.
  if (presso::test::raster_tools_or_skip()) {
    const auto raster = presso::test::rasterise_svg(out + "/plot.svg", dir.file("plot"));
    const auto blue = presso::test::hex_color(presso::kChartPointColor);
    const auto red = presso::test::hex_color(presso::kChartReferenceColor);
    const int half = raster.width / 2;
    CHECK(raster.count(blue, 0, 0, half, raster.height) > 6 * 40);             // ppl panel
    CHECK(raster.count(blue, half, 0, raster.width, raster.height) > 6 * 40);  // KL panel
    CHECK(raster.count(red, 0, 0, half, raster.height) > 200);
  }

  // Second run, the six good recipes: nothing is compressed or evaluated again.
  const auto stamp = fs::last_write_time(out + "/runs/rtn-w4g128/model/model.safetensors");
  const auto second = presso::test::run_cli("sweep " + recipes + common);
  INFO(second.output);
  CHECK(second.exit_code == 0);
  CHECK(count_of(second.output, "reused (inputs unchanged), no compression") == 6);
  CHECK(count_of(second.output, ": compressing") == 0);
  CHECK_THAT(second.output, !Catch::Contains("measuring perplexity"));
  CHECK(fs::last_write_time(out + "/runs/rtn-w4g128/model/model.safetensors") == stamp);
}

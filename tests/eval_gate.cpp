// The regression gate's verdicts on values that are not numbers a gate can compare: a NaN or
// infinite measurement never passes, and a baseline whose perplexity is not a finite number above
// 0 (which would make any increase look like an improvement) is refused.
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/common/errors.h"
#include "lib/eval/eval_report.h"
#include "lib/eval/gate.h"
#include "tests/catch_torch.h"
#include "tests/temp_dir.h"

namespace {

using nlohmann::json;

json report_with_ppl(double ppl) {
  return {{"schema_version", presso::kEvalReportSchemaVersion},
          {"protocol", {{"id", "presso-ppl-v1"}, {"seqlen", 64}, {"windows", 2}}},
          {"fingerprints", {{"data", "d"}, {"tokens", "t"}}},
          {"ppl", ppl}};
}

}  // namespace

TEST_CASE("the gate never passes a NaN or infinite perplexity", "[unit]") {
  presso::GateLimits limits;
  limits.max_ppl = 1e9;
  limits.max_increase = 0.01;
  const json baseline = report_with_ppl(30.0);
  for (const double ppl : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    INFO(ppl);
    const presso::GateVerdict verdict = presso::judge(report_with_ppl(ppl), &baseline, "b", limits);
    CHECK_FALSE(verdict.passed);
    for (const auto& check : verdict.checks) CHECK_FALSE(check["passed"].get<bool>());
  }
  // As a report read back from JSON holds it: null.
  json nulled = report_with_ppl(1.0);
  nulled["ppl"] = nullptr;
  CHECK_FALSE(presso::judge(nulled, &baseline, "b", limits).passed);
  CHECK(presso::judge(report_with_ppl(30.0), &baseline, "b", limits).passed);
}

TEST_CASE("a baseline perplexity of 0 or below is refused naming the file and field", "[unit]") {
  presso::test::TempDir dir("gate_baseline_ppl");
  presso::GateLimits limits;
  limits.max_increase = 0.01;
  for (const double ppl : {-1.0, 0.0}) {
    INFO(ppl);
    const std::string path = dir.write("base.json", report_with_ppl(ppl).dump());
    try {
      presso::read_baseline(path, limits);
      FAIL("no error");
    } catch (const presso::UserError& e) {
      CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("'/ppl'"));
    }
  }
  const std::string good = dir.write("good.json", report_with_ppl(30.0).dump());
  CHECK_NOTHROW(presso::read_baseline(good, limits));
}

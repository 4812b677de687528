#include "lib/eval/gate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <vector>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/eval/eval_report.h"

namespace presso {

namespace {

using nlohmann::json;

struct Field {
  const char* pointer;  // JSON pointer into a report
  const char* meaning;  // for the refusal message
};

// What must be equal for two reports' numbers to be comparable at all.
const std::vector<Field>& identity_fields() {
  static const std::vector<Field> fields = {
      {"/schema_version", "report schema version"},
      {"/protocol/id", "evaluation protocol"},
      {"/protocol/seqlen", "tokens per window"},
      {"/protocol/windows", "number of windows"},
      {"/fingerprints/data", "SHA-256 of the evaluation text"},
      {"/fingerprints/tokens", "SHA-256 of the scored tokens (tokenizer or text differ)"},
  };
  return fields;
}

// And, for comparing KL, which reference it was measured against and how.
const std::vector<Field>& kl_identity_fields() {
  static const std::vector<Field> fields = {
      {"/kl_reference/fingerprint", "fingerprint of the KL reference model"},
      {"/kl_reference/top_k", "reference tokens kept per position (top-k)"},
  };
  return fields;
}

const json* find(const json& report, const char* pointer) {
  const json::json_pointer ptr(pointer);
  return report.contains(ptr) ? &report.at(ptr) : nullptr;
}

void require_field(const json& report, const std::string& path, const char* pointer) {
  if (!find(report, pointer))
    fail_user(
        "{}: field '{}' is missing; it is not a report of presso eval --json (schema {}), "
        "or was written by an older presso: measure the baseline again",
        path, pointer, kEvalReportSchemaVersion);
}

double number_at(const json& report, const std::string& path, const char* pointer) {
  const json* value = find(report, pointer);
  if (!value || !value->is_number())
    fail_user("{}: field '{}' (a number) is missing", path, pointer);
  return value->get<double>();
}

struct Check {
  std::string name;
  double value = 0;
  double limit = 0;
  std::string text;  // what is compared with what, for the verdict line
  // A NaN compares false with everything; it must fail, not slip through a negated test.
  bool passed() const { return std::isfinite(value) && std::isfinite(limit) && value <= limit; }
};

}  // namespace

json read_baseline(const std::string& path, const GateLimits& limits) {
  const json baseline = parse_json_input(read_file_bytes(path), path);
  if (!baseline.is_object()) fail_user("{}: expected a JSON object (a presso eval report)", path);
  for (const Field& field : identity_fields()) require_field(baseline, path, field.pointer);
  // A ppl of 0 or below would make every ratio meaningless (a negative one passes any limit).
  const double ppl = number_at(baseline, path, "/ppl");
  if (!std::isfinite(ppl) || ppl <= 0)
    fail_user("{}: field '/ppl' is {}; a perplexity is a finite number above 0", path, ppl);
  if (limits.max_kl_increase) {
    for (const Field& field : kl_identity_fields()) require_field(baseline, path, field.pointer);
    const double kl = number_at(baseline, path, "/mean_kl");
    if (!std::isfinite(kl) || kl < 0)
      fail_user("{}: field '/mean_kl' is {}; a KL divergence is a finite number of at least 0",
                path, kl);
  }
  return baseline;
}

void check_comparable(const json& report, const json& baseline, const std::string& path,
                      const GateLimits& limits) {
  std::vector<Field> fields = identity_fields();
  if (limits.max_kl_increase)
    fields.insert(fields.end(), kl_identity_fields().begin(), kl_identity_fields().end());
  for (const Field& field : fields) {
    const json* mine = find(report, field.pointer);
    const json* theirs = find(baseline, field.pointer);
    if (!mine) fail_internal("eval report lacks '{}'", field.pointer);
    if (!theirs || *mine != *theirs)
      fail_user(
          "refusing to compare with the baseline {}: field '{}' ({}) differs: baseline {}, "
          "this run {}",
          path, field.pointer, field.meaning, theirs ? theirs->dump() : "absent", mine->dump());
  }
}

GateVerdict judge(const json& report, const json* baseline, const std::string& baseline_path,
                  const GateLimits& limits) {
  // A NaN is stored as null in JSON; read it back as NaN so the check fails, not throws.
  const json& ppl_value = report.at("ppl");
  const double ppl = ppl_value.is_number() ? ppl_value.get<double>() : NAN;
  std::vector<Check> checks;
  if (limits.max_ppl)
    checks.push_back({"max_ppl", ppl, *limits.max_ppl,
                      fmt::format("ppl {:.4f} (limit {:.4f})", ppl, *limits.max_ppl)});
  if (limits.max_increase) {
    const double base = baseline->at("ppl").get<double>();
    const double increase = ppl / base - 1.0;
    checks.push_back({"max_increase", increase, *limits.max_increase,
                      fmt::format("ppl {:.4f} vs baseline {:.4f}: {:+.2f}% (limit +{:.2f}%)", ppl,
                                  base, 100.0 * increase, 100.0 * *limits.max_increase)});
  }
  const double kl = limits.needs_kl() ? number_at(report, "this run", "/mean_kl") : 0.0;
  if (limits.max_kl)
    checks.push_back({"max_kl", kl, *limits.max_kl,
                      fmt::format("mean KL {:.6f} (limit {:.6f})", kl, *limits.max_kl)});
  if (limits.max_kl_increase) {
    const double base = baseline->at("mean_kl").get<double>();
    // As an allowed value rather than a ratio: a baseline KL of 0 still gives a limit.
    const double allowed = base * (1.0 + *limits.max_kl_increase);
    checks.push_back({"max_kl_increase", kl, allowed,
                      fmt::format("mean KL {:.6f} vs baseline {:.6f} (limit +{:.2f}%: {:.6f})", kl,
                                  base, 100.0 * *limits.max_kl_increase, allowed)});
  }
  GateVerdict verdict;
  std::vector<std::string> parts;
  for (const Check& check : checks) {
    verdict.passed = verdict.passed && check.passed();
    parts.push_back(check.text + (check.passed() ? "" : " EXCEEDED"));
    verdict.checks.push_back({{"name", check.name},
                              {"value", check.value},
                              {"limit", check.limit},
                              {"passed", check.passed()}});
  }
  verdict.line =
      fmt::format("{}: {}{}", verdict.passed ? "PASS" : "REGRESSION", fmt::join(parts, "; "),
                  baseline ? fmt::format(" [baseline {}]", baseline_path) : "");
  return verdict;
}

}  // namespace presso

// The regression gate of `presso eval`: limits on perplexity and KL divergence, absolute or
// relative to a baseline report, and the refusal to compare reports that measured different
// things (other data, tokens, protocol or reference model).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace presso {

struct GateLimits {
  std::optional<double> max_increase;     // ppl over the baseline's, fraction (0.01 = 1 %)
  std::optional<double> max_ppl;          // ppl, absolute
  std::optional<double> max_kl;           // mean KL, absolute (nats)
  std::optional<double> max_kl_increase;  // mean KL over the baseline's, fraction

  bool any() const { return max_increase || max_ppl || max_kl || max_kl_increase; }
  bool needs_baseline() const { return max_increase || max_kl_increase; }
  bool needs_kl() const { return max_kl || max_kl_increase; }
};

// Reads a baseline report (written by presso eval --json); UserError naming the path and the
// field when it is not JSON or lacks a field the comparison needs.
nlohmann::json read_baseline(const std::string& path, const GateLimits& limits);

// UserError when `report` and `baseline` (at `path`) were measured on different data, tokens,
// protocol or (for a KL limit) reference, naming the field and both values. `report` needs only
// its identity (schema_version, fingerprints, protocol, kl_reference), so this runs before the
// evaluation.
void check_comparable(const nlohmann::json& report, const nlohmann::json& baseline,
                      const std::string& path, const GateLimits& limits);

struct GateVerdict {
  bool passed = true;
  std::string line;       // "PASS: ppl 12.34 ≤ ..." — one line for the log
  nlohmann::json checks;  // one entry per limit: name, value, limit, passed
};

// Applies the limits to a finished report (with ppl, and mean_kl when a KL limit is set).
GateVerdict judge(const nlohmann::json& report, const nlohmann::json* baseline,
                  const std::string& baseline_path, const GateLimits& limits);

}  // namespace presso

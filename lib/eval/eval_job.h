// The `presso eval` job: perplexity of a checkpoint on a text file, optionally its KL divergence
// from a reference model (resident, or through a saved log-prob file), a JSON report
// (eval_report.h), and an optional regression gate (gate.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "lib/eval/gate.h"

namespace presso {

// Reference tokens kept per position for KL when --top-k is not given: 264 bytes per position;
// on the shipped model the top 32 + rest give 70 % of the full-vocabulary KL (README).
constexpr int64_t kDefaultKlTopK = 32;

struct EvalOptions {
  std::string model_dir;
  std::string adapter_dir;  // a PEFT LoRA adapter evaluated with the model; empty: none
  std::string data_path;
  int64_t seqlen = 512;
  std::optional<int64_t> max_windows;
  int64_t batch_size = 0;  // 0 = auto_batch_size()
  std::string device = "cpu";
  std::string json_path;      // empty: no report file
  std::string baseline_path;  // empty: no baseline
  GateLimits gate;
  std::string reference_dir;       // KL against this model, run beside the evaluated one
  std::string logprobs_path;       // KL against the log-probs saved in this file
  std::string save_logprobs_path;  // save the evaluated model's top-k log-probs here
  std::optional<int64_t> top_k;    // default kDefaultKlTopK; a log-prob file brings its own
  bool progress = true;
};

// "1%" -> 0.01, "0.5 %" -> 0.005, "0.02" -> 0.02; UserError naming `what` otherwise.
double parse_fraction(const std::string& text, const std::string& what);

// Runs the evaluation and returns the report (also written to json_path when set). With gate
// limits the report's "gate" holds the verdict {passed, verdict, checks}; the caller decides
// what a failed gate does (the CLI exits 1). UserError before any model runs for a baseline or
// log-prob file measured on other data, tokens or protocol.
nlohmann::json run_eval(const EvalOptions& options);

}  // namespace presso

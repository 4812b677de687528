// The `presso eval` job: perplexity of a checkpoint on a text file, a JSON report, and an
// optional regression gate against a baseline report.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace presso {

struct EvalOptions {
  std::string model_dir;
  std::string adapter_dir;  // a PEFT LoRA adapter evaluated with the model; empty: none
  std::string data_path;
  int64_t seqlen = 512;
  std::optional<int64_t> max_windows;
  int64_t batch_size = 0;  // 0 = auto_batch_size()
  std::string device = "cpu";
  std::string json_path;               // empty: no report file
  std::string baseline_path;           // empty: no gate
  std::optional<double> max_increase;  // fraction (0.01 = 1 %); needs baseline_path
  bool progress = true;
};

// "1%" -> 0.01, "0.5 %" -> 0.005, "0.02" -> 0.02; UserError naming `what` otherwise.
double parse_fraction(const std::string& text, const std::string& what);

// Runs the evaluation and returns the report (also written to json_path when set). With a
// baseline, throws RegressionError after writing the report if ppl rose by more than allowed.
nlohmann::json run_eval(const EvalOptions& options);

}  // namespace presso

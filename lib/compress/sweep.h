// `presso sweep`: many recipes over one model — each compressed, evaluated (ppl, and KL against
// the original through a log-prob file measured once), and gathered into results.csv,
// results.json and plot.svg (perplexity and KL against bits per weight, the original as a
// reference line).
//
// Output folder:
//   reference/eval.json, reference/logprobs.safetensors   the original, measured once
//   runs/<recipe>/model/                                   the compressed checkpoint
//   runs/<recipe>/eval.json                                its eval report (eval_report.h)
//   runs/<recipe>/inputs.json                              what it was made from (below)
//   results.csv, results.json, plot.svg
// Resumable: a run whose inputs.json equals this sweep's inputs for it (SHA-256 of the recipe,
// the model's fingerprint, the calibration text's SHA-256 and settings, the evaluation protocol
// and data, the output format, presso's version) and whose model and report exist is reused
// without compressing or evaluating again. A failed recipe is reported and the sweep goes on.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/compress/pass.h"
#include "lib/export/formats.h"

namespace presso {

struct SweepOptions {
  std::vector<std::string> recipes;  // recipe files; each run is named after the file's stem
  std::string model_dir;
  std::string calib_path;
  std::string eval_path;
  std::string output_dir;
  OutputFormat format = OutputFormat::kCompressedTensors;
  int64_t nsamples = 128;  // calibration windows
  int64_t seqlen = 512;    // calibration tokens per window
  uint64_t seed = 0;
  int64_t eval_seqlen = 512;
  std::optional<int64_t> eval_windows;          // first K windows of the evaluation text; none: all
  int64_t top_k = 32;                           // KL reference tokens per position
  std::function<void(const std::string&)> log;  // one line per event; none: silent
};

struct SweepRow {
  std::string name;              // the recipe file's stem
  std::string recipe;            // its path
  std::string status;            // "compressed", "reused" or "failed"
  std::string error;             // why it failed
  int exit_code = 0;             // of the failure (2 bad input, 3 internal)
  double bits_per_weight = NAN;  // 8 · bytes of the weight files / the original's parameters
  int64_t size_bytes = 0;
  double ppl = NAN, mean_kl = NAN, top1_agreement = NAN;
  double seconds = 0;  // compression and evaluation in this sweep (0 when reused)
};

struct SweepResult {
  SweepRow original;  // name "original": the uncompressed model
  std::vector<SweepRow> rows;
  int failed() const;
};

// Runs the sweep and writes the result files. UserError before any work for a missing recipe,
// two recipes with the same name, a --seqlen or --eval-seqlen beyond the model's positions, or
// an output folder that cannot be used: inside the model or holding it, or an existing folder
// that is neither empty nor an earlier sweep's.
SweepResult run_sweep(const SweepOptions& options, const PassRegistry& registry);

}  // namespace presso

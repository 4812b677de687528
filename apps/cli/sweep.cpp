// `presso sweep`: many recipes over one model, each compressed and evaluated, with a CSV, a JSON
// and an SVG plot of perplexity and KL against bits per weight.
#include "lib/compress/sweep.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/cli/commands.h"
#include "lib/common/errors.h"
#include "lib/eval/eval_job.h"
#include "lib/eval/runtime.h"
#include "passes/registry.h"

namespace presso::cli {

void add_sweep_command(CLI::App& app) {
  auto options = std::make_shared<SweepOptions>();
  auto format = std::make_shared<std::string>("compressed-tensors");
  auto eval_windows = std::make_shared<int64_t>(0);
  CLI::App* cmd = app.add_subcommand(
      "sweep",
      "Compress a model with each recipe, evaluate every output, and compare them.\n"
      "Each recipe's checkpoint goes to OUT/runs/<recipe>/model with its eval report; the\n"
      "original's perplexity and top-k log-probs are measured once (OUT/reference), so every\n"
      "run gets its mean KL divergence from the original without running the original again.\n"
      "OUT/results.csv and OUT/results.json list bits per weight (size on disk of the weight\n"
      "files x 8 / the original's parameters), ppl, mean KL and top-1 agreement; OUT/plot.svg\n"
      "draws ppl and KL against bits per weight with the original as a reference line.\n"
      "Re-running reuses every run whose recipe, model, data and settings are unchanged; a\n"
      "failed recipe is reported and the sweep goes on.\n"
      "Example:\n"
      "  presso sweep configs/rtn-w4g128.yaml configs/gptq-w4g128.yaml --model MODEL \\\n"
      "      --calib calib.txt --eval eval.txt -o sweep-out\n"
      "Exit codes: 0 every recipe ran, 2 bad input or a recipe failed on bad input, 3 internal "
      "error.");
  cmd->add_option("recipes", options->recipes, "recipe YAML files")->required();
  cmd->add_option("--model", options->model_dir, "Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--calib", options->calib_path, "calibration text")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--eval", options->eval_path, "evaluation text")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", options->output_dir, "output folder")->required();
  cmd->add_option("--format", *format, "output format of every run")->capture_default_str();
  cmd->add_option("--nsamples", options->nsamples, "calibration windows")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seqlen", options->seqlen, "calibration tokens per window")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--seed", options->seed, "calibration sampling seed")->capture_default_str();
  cmd->add_option("--eval-seqlen", options->eval_seqlen, "evaluation tokens per window")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--eval-windows", *eval_windows, "evaluate the first K windows only (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", options->top_k, "reference tokens kept per position for KL")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->callback([=] {
    options->format = output_format_from_name(*format);
    if (*eval_windows > 0) options->eval_windows = *eval_windows;
    options->log = [](const std::string& line) {
      std::fprintf(stderr, "sweep: %s\n", line.c_str());
    };
    return_freed_memory();
    const SweepResult result = run_sweep(*options, pass_registry());
    std::printf("%-32s %8s %10s %10s %9s  %s\n", "recipe", "bits/w", "ppl", "mean KL", "top-1",
                "status");
    for (const SweepRow* row : [&] {
           std::vector<const SweepRow*> rows{&result.original};
           for (const auto& r : result.rows) rows.push_back(&r);
           return rows;
         }())
      std::printf("%-32s %8.3f %10.4f %10.6f %8.2f%%  %s\n", row->name.c_str(),
                  row->bits_per_weight, row->ppl, row->mean_kl, 100.0 * row->top1_agreement,
                  row->status.c_str());
    std::printf("wrote %s/results.csv, results.json, plot.svg\n", options->output_dir.c_str());
    if (result.failed() == 0) return;
    int code = 2;
    std::string names;
    for (const auto& row : result.rows) {
      if (row.status != "failed") continue;
      code = std::max(code, row.exit_code);
      names += (names.empty() ? "" : ", ") + row.name;
    }
    throw Error(
        fmt::format("{} of {} recipes failed: {}", result.failed(), result.rows.size(), names),
        code);
  });
}

}  // namespace presso::cli

// `presso eval`: perplexity of a checkpoint on a text file, with an optional regression gate.
#include <cstdio>
#include <memory>

#include "apps/cli/commands.h"
#include "lib/eval/eval_job.h"
#include "lib/eval/runtime.h"

namespace presso::cli {

void add_eval_command(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  auto max_increase = std::make_shared<std::string>();
  auto max_windows = std::make_shared<int64_t>(0);
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Measure perplexity of a checkpoint on a text file.\n"
      "Protocol: the whole file is tokenized with the checkpoint's own tokenizer.json, without\n"
      "special tokens; it is cut into non-overlapping windows of --seqlen tokens from the start\n"
      "(no BOS); ppl = exp(mean NLL of tokens 1..seqlen-1 of every window).\n"
      "Examples:\n"
      "  presso eval tests/data/sotu-llama-16m --data tests/data/eval.txt --seqlen 512\n"
      "  presso eval OUT --data eval.txt --baseline base.json --max-increase 1% --json "
      "report.json\n"
      "  presso eval OUT --adapter OUT/adapter --data eval.txt   (the low-rank paths as PEFT runs "
      "them)\n"
      "Exit codes: 0 ok, 1 perplexity regressed past --max-increase, 2 bad input, 3 internal "
      "error.");
  cmd->add_option("model_dir", options->model_dir, "Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--adapter", options->adapter_dir,
                  "PEFT LoRA adapter directory evaluated with the model (e.g. OUT/adapter)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--data", options->data_path, "UTF-8 text file to evaluate on")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--seqlen", options->seqlen, "tokens per window")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--max-windows", *max_windows, "evaluate only the first K windows (0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch-size", options->batch_size,
                  "windows per forward pass; 0 = auto (up to 8, at most 512 MiB of logits)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--json", options->json_path, "write the JSON report here (ppl under 'ppl')");
  cmd->add_option("--baseline", options->baseline_path,
                  "JSON report of an earlier presso eval to compare with")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-increase", *max_increase,
                  "fail with exit 1 if ppl exceeds the baseline's by more than this (1% or 0.01)");
  cmd->add_flag("!--no-progress", options->progress,
                "no progress bar (it is off anyway when "
                "stderr is not a terminal or CI is set)");
  cmd->callback([options, max_increase, max_windows] {
    if (!max_increase->empty())
      options->max_increase = parse_fraction(*max_increase, "--max-increase");
    if (*max_windows > 0) options->max_windows = *max_windows;
    retain_freed_memory();
    const auto report = run_eval(*options);
    std::printf("ppl %.4f  (%lld windows x %lld tokens, %.0f tokens/s)\n",
                report["ppl"].get<double>(),
                static_cast<long long>(report["windows"].get<int64_t>()),
                static_cast<long long>(options->seqlen), report["tokens_per_second"].get<double>());
    if (report.contains("baseline"))
      std::printf("baseline %.4f  change %+.2f%%  %s\n", report["baseline"]["ppl"].get<double>(),
                  100.0 * report["baseline"]["increase"].get<double>(),
                  report["baseline"]["passed"].get<bool>() ? "ok" : "REGRESSION");
  });
}

}  // namespace presso::cli

// `presso eval`: perplexity of a checkpoint on a text file, KL divergence from a reference, and
// an optional regression gate.
#include <cstdio>
#include <memory>
#include <optional>

#include "apps/cli/commands.h"
#include "lib/common/errors.h"
#include "lib/eval/eval_job.h"
#include "lib/eval/eval_report.h"
#include "lib/eval/runtime.h"

namespace presso::cli {

void add_eval_command(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  // Limits arrive as text ("1%") and are parsed in the callback, with the flag named on error.
  auto max_increase = std::make_shared<std::string>();
  auto max_kl_increase = std::make_shared<std::string>();
  auto max_ppl = std::make_shared<double>(0);
  auto max_kl = std::make_shared<double>(-1);
  auto top_k = std::make_shared<int64_t>(0);
  auto max_windows = std::make_shared<int64_t>(0);
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Measure perplexity of a checkpoint on a text file, and its KL divergence from a reference.\n"
      "Protocol: the whole file is tokenized with the checkpoint's own tokenizer.json, without\n"
      "special tokens; it is cut into non-overlapping windows of --seqlen tokens from the start\n"
      "(no BOS); ppl = exp(mean NLL of tokens 1..seqlen-1 of every window).\n"
      "Examples:\n"
      "  presso eval tests/data/sotu-llama-16m --data tests/data/eval.txt --seqlen 512\n"
      "  presso eval OUT --data eval.txt --baseline base.json --max-increase 1% --json "
      "report.json\n"
      "  presso eval OUT --adapter OUT/adapter --data eval.txt   (the low-rank paths as PEFT runs "
      "them)\n"
      "  presso eval OUT --data eval.txt --reference ORIGINAL --max-kl 0.05   (both resident)\n"
      "  presso eval ORIGINAL --data eval.txt --max-windows 16 --save-logprobs ref.logprobs\n"
      "  presso eval OUT --data eval.txt --max-windows 16 --logprobs ref.logprobs --max-kl 0.05\n"
      "KL: at each position over the reference's top-k tokens plus one bucket for the rest of the\n"
      "vocabulary: a lower bound of the full KL (70% of it at k=32 on the shipped 16M model).\n"
      "A baseline or log-prob file measured on other data, tokens or protocol is refused (exit "
      "2).\n"
      "Exit codes: 0 ok, 1 a gate found a regression, 2 bad input or refused comparison, 3 "
      "internal error.");
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
  cmd->add_option("--max-ppl", *max_ppl, "fail with exit 1 if ppl exceeds this")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--reference", options->reference_dir,
                  "the original model: report KL divergence from it (run beside this one)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--logprobs", options->logprobs_path,
                  "KL divergence from the reference log-probs saved in this file")
      ->check(CLI::ExistingFile);
  cmd->add_option("--save-logprobs", options->save_logprobs_path,
                  "save this model's top-k log-probs here, as a KL reference for later runs");
  cmd->add_option("--top-k", *top_k, "reference tokens kept per position for KL (default 32)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--max-kl", *max_kl, "fail with exit 1 if the mean KL exceeds this (nats)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-kl-increase", *max_kl_increase,
                  "fail with exit 1 if the mean KL exceeds the baseline's by more than this");
  cmd->add_flag("!--no-progress", options->progress,
                "no progress bar (it is off anyway when "
                "stderr is not a terminal or CI is set)");
  cmd->callback([=] {
    if (!max_increase->empty())
      options->gate.max_increase = parse_fraction(*max_increase, "--max-increase");
    if (!max_kl_increase->empty())
      options->gate.max_kl_increase = parse_fraction(*max_kl_increase, "--max-kl-increase");
    if (*max_ppl > 0) options->gate.max_ppl = *max_ppl;
    if (*max_kl >= 0) options->gate.max_kl = *max_kl;
    if (*top_k > 0) options->top_k = *top_k;
    if (*max_windows > 0) options->max_windows = *max_windows;
    retain_freed_memory();
    const auto report = run_eval(*options);
    std::fputs(eval_summary_text(report).c_str(), stdout);
    if (report.contains("baseline"))
      std::printf("baseline %.4f  change %+.2f%%\n", report["baseline"]["ppl"].get<double>(),
                  100.0 * report["baseline"]["increase"].get<double>());
    if (!report.contains("gate")) return;
    // The one-line verdict: on stdout when it passes, as the error (exit 1) when it does not.
    const std::string verdict = report["gate"]["verdict"].get<std::string>();
    if (!report["gate"]["passed"].get<bool>()) throw RegressionError(verdict);
    std::printf("%s\n", verdict.c_str());
  });
}

}  // namespace presso::cli

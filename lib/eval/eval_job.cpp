#include "lib/eval/eval_job.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/output_paths.h"
#include "lib/common/progress.h"
#include "lib/common/sha256.h"
#include "lib/common/version.h"
#include "lib/eval/eval_report.h"
#include "lib/eval/fingerprint.h"
#include "lib/eval/kl_divergence.h"
#include "lib/eval/logprobs_file.h"
#include "lib/eval/perplexity.h"
#include "lib/eval/runtime.h"
#include "lib/model/model.h"
#include "lib/model/peft_adapter.h"
#include "lib/tokenizer/tokenizer.h"

namespace presso {

double parse_fraction(const std::string& text, const std::string& what) {
  std::string number = text;
  bool percent = false;
  while (!number.empty() && (number.back() == ' ' || number.back() == '%')) {
    percent = percent || number.back() == '%';
    number.pop_back();
  }
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || !std::isfinite(value) || value < 0)
    fail_user("{} '{}': expected a non-negative fraction such as 0.01 or a percentage such as 1%",
              what, text);
  return percent ? value / 100.0 : value;
}

namespace {

using nlohmann::json;

void validate(const EvalOptions& options) {
  const GateLimits& gate = options.gate;
  if (gate.max_increase && options.baseline_path.empty())
    fail_user("--max-increase needs --baseline");
  if (gate.max_kl_increase && options.baseline_path.empty())
    fail_user("--max-kl-increase needs --baseline");
  if (!options.reference_dir.empty() && !options.logprobs_path.empty())
    fail_user("--reference and --logprobs both give the KL reference; pass one of them");
  if (gate.needs_kl() && options.reference_dir.empty() && options.logprobs_path.empty())
    fail_user("{} needs a KL reference: --reference ORIGINAL_DIR or --logprobs FILE",
              gate.max_kl ? "--max-kl" : "--max-kl-increase");
  // The files written at the end: checked now, not after the evaluation.
  std::vector<NamedPath> outputs;
  for (const NamedPath& output :
       {NamedPath{"--json", options.json_path}, {"--save-logprobs", options.save_logprobs_path}}) {
    if (output.path.empty()) continue;
    check_output_file(output);
    outputs.push_back(output);
  }
  check_output_paths(outputs, {{"--data", options.data_path},
                               {"--baseline", options.baseline_path},
                               {"--logprobs", options.logprobs_path}});
}

// A log-prob file is used only on the data and protocol it was measured with.
void check_logprobs_match(const LogProbsHeader& saved, const json& report,
                          const std::string& path) {
  const struct {
    const char* field;
    json saved, mine;
    const char* hint;
  } fields[] = {
      {"protocol", saved.protocol, report["protocol"]["id"], ""},
      {"seqlen", saved.seqlen, report["protocol"]["seqlen"], " (pass the same --seqlen)"},
      {"windows", saved.windows, report["protocol"]["windows"], " (pass the same --max-windows)"},
      {"data_fingerprint", saved.data_fingerprint, report["fingerprints"]["data"],
       " (a different evaluation text)"},
      {"tokens_fingerprint", saved.tokens_fingerprint, report["fingerprints"]["tokens"],
       " (a different tokenizer or text)"},
  };
  for (const auto& f : fields)
    if (f.saved != f.mine)
      fail_user("refusing to use the log-prob file {}: field '{}' differs: file {}, this run {}{}",
                path, f.field, f.saved.dump(), f.mine.dump(), f.hint);
}

Model open_model(const std::string& dir, const std::string& adapter_dir, torch::Device device) {
  Model model = Model::open(dir);
  if (!adapter_dir.empty()) {
    std::vector<std::string> linears;
    for (const auto& linear : model.linears()) linears.push_back(linear.name);
    model.set_lowrank_paths(read_peft_adapter(adapter_dir, linears));
  }
  model.to(device);
  return model;
}

}  // namespace

json run_eval(const EvalOptions& options) {
  validate(options);
  const torch::Device device = parse_device(options.device);
  // Read the baseline and the log-prob file before the long work, so a bad one fails at once.
  std::optional<json> baseline;
  if (!options.baseline_path.empty()) baseline = read_baseline(options.baseline_path, options.gate);
  std::optional<LogProbsFile> saved;
  if (!options.logprobs_path.empty()) saved = load_logprobs(options.logprobs_path);
  const int64_t top_k = saved ? saved->header.top_k : options.top_k.value_or(kDefaultKlTopK);
  if (saved && options.top_k && *options.top_k != top_k)
    fail_user("--top-k {} differs from the {} tokens per position saved in {}", *options.top_k,
              top_k, options.logprobs_path);

  if (options.progress)
    progress_note("eval", fmt::format("reading {} and tokenizing {}", options.model_dir,
                                      options.data_path));
  const std::string text = read_file_bytes(options.data_path);
  const Model model = open_model(options.model_dir, options.adapter_dir, device);
  model.check_sequence_length(options.seqlen, "--seqlen");
  const Tokenizer tokenizer = Tokenizer::from_model_dir(options.model_dir);
  const auto tokenize_start = std::chrono::steady_clock::now();
  const std::vector<int32_t> tokens = tokenizer.encode(text, /*add_special_tokens=*/false);
  const double tokenize_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - tokenize_start).count();
  if (options.seqlen < 2) fail_user("--seqlen must be at least 2, got {}", options.seqlen);
  int64_t windows = count_windows(static_cast<int64_t>(tokens.size()), options.seqlen);
  if (windows == 0)
    fail_user("the text has {} tokens, fewer than one window of --seqlen {}", tokens.size(),
              options.seqlen);
  if (options.max_windows) windows = std::min(windows, *options.max_windows);

  // What was measured, known before any forward: enough to refuse an incomparable baseline.
  json report = {
      {"schema_version", kEvalReportSchemaVersion},
      {"protocol",
       {{"id", kEvalProtocolId},
        {"seqlen", options.seqlen},
        {"windows", windows},
        {"description", kEvalProtocolDescription}}},
      {"fingerprints",
       {{"model", model_fingerprint(options.model_dir, options.adapter_dir)},
        {"data", sha256_file_hex(options.data_path)},
        {"tokens", tokens_fingerprint(tokens, windows * options.seqlen)}}},
  };
  const bool with_kl = saved || !options.reference_dir.empty();
  if (with_kl)
    report["kl_reference"] = {{"source", saved ? "log-prob file" : "resident model"},
                              {"path", saved ? options.logprobs_path : options.reference_dir},
                              {"fingerprint", saved ? saved->header.model_fingerprint
                                                    : model_fingerprint(options.reference_dir)},
                              {"top_k", top_k}};
  if (saved) check_logprobs_match(saved->header, report, options.logprobs_path);
  if (baseline) check_comparable(report, *baseline, options.baseline_path, options.gate);

  std::optional<Model> reference;
  if (!options.reference_dir.empty()) {
    reference = open_model(options.reference_dir, "", device);
    reference->check_sequence_length(options.seqlen, "--seqlen (for the --reference model)");
  }
  KlAccumulator kl;
  std::vector<ReferenceLogProbs> to_save;
  PerplexityOptions ppl_options;
  ppl_options.seqlen = options.seqlen;
  ppl_options.max_windows = windows;
  ppl_options.batch_size = options.batch_size;
  ppl_options.device = device;
  ppl_options.on_logits = [&](const torch::Tensor& logits, const torch::Tensor& ids,
                              int64_t first_window) {
    const int64_t rows_per_window = options.seqlen - 1;
    if (reference)
      kl.add(position_divergence(
          reference_logprobs(finite_logits(*reference, ids, first_window), ids, top_k), logits,
          ids));
    if (saved)
      kl.add(position_divergence(
          saved->rows.narrow(first_window * rows_per_window, ids.size(0) * rows_per_window), logits,
          ids));
    if (!options.save_logprobs_path.empty())
      to_save.push_back(reference_logprobs(logits, ids, top_k));
  };
  std::unique_ptr<Progress> progress;
  if (options.progress) {
    progress = std::make_unique<Progress>("eval", windows, "windows");
    ppl_options.on_batch = [&progress, done = int64_t{0}](int64_t windows_done) mutable {
      progress->advance(windows_done - done);
      done = windows_done;
    };
  }
  const PerplexityResult result = compute_perplexity(model, tokens, ppl_options);
  if (progress) progress->finish();

  report.update({
      {"ppl", result.ppl},
      {"nll_sum", result.nll_sum},
      {"tokens_scored", result.tokens_scored},
      {"windows", result.windows},
      {"seqlen", options.seqlen},
      {"batch_size", result.batch_size},
      {"text_tokens", tokens.size()},
      {"seconds", result.seconds},
      {"tokens_per_second", result.tokens_per_second},
      {"tokenize_seconds", tokenize_seconds},
      {"model", options.model_dir},
      {"adapter", options.adapter_dir.empty() ? json(nullptr) : json(options.adapter_dir)},
      {"model_type", model.config().model_type},
      {"data", options.data_path},
      {"device", device.str()},
      {"versions",
       {{"presso", presso_version()},
        {"commit", build_commit()},
        {"modified", build_dirty()},
        {"libtorch", libtorch_description()}}},
  });
  if (with_kl) {
    const KlSummary summary = kl.summary();
    if (!std::isfinite(summary.mean_kl))
      fail_user(
          "the mean KL divergence from {} is not finite ({}): the reference's log-probs "
          "hold NaN or infinite values",
          saved ? options.logprobs_path : options.reference_dir, summary.mean_kl);
    add_kl_summary(report, summary);
  }
  if (!options.save_logprobs_path.empty()) {
    LogProbsHeader header;
    header.protocol = kEvalProtocolId;
    header.seqlen = options.seqlen;
    header.windows = windows;
    header.top_k = top_k;
    header.model_fingerprint = report["fingerprints"]["model"];
    header.data_fingerprint = report["fingerprints"]["data"];
    header.tokens_fingerprint = report["fingerprints"]["tokens"];
    header.presso_version = presso_version();
    save_logprobs(options.save_logprobs_path, {header, ReferenceLogProbs::concat(to_save)});
  }
  if (baseline) {
    report["baseline"] = {{"path", options.baseline_path},
                          {"ppl", (*baseline)["ppl"]},
                          {"increase", result.ppl / (*baseline)["ppl"].get<double>() - 1.0}};
    if (baseline->contains("mean_kl")) report["baseline"]["mean_kl"] = (*baseline)["mean_kl"];
  }
  if (options.gate.any()) {
    const GateVerdict verdict =
        judge(report, baseline ? &*baseline : nullptr, options.baseline_path, options.gate);
    report["gate"] = {
        {"passed", verdict.passed}, {"verdict", verdict.line}, {"checks", verdict.checks}};
  }
  if (!options.json_path.empty()) write_file_atomically(options.json_path, report.dump(2) + "\n");
  return report;
}

}  // namespace presso

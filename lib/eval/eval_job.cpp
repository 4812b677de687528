#include "lib/eval/eval_job.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/progress.h"
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

double baseline_ppl(const std::string& path) {
  nlohmann::json report;
  try {
    report = nlohmann::json::parse(read_file_bytes(path));
  } catch (const nlohmann::json::exception& e) {
    fail_user("{}: not valid JSON: {}", path, e.what());
  }
  if (!report.is_object() || !report.contains("ppl") || !report["ppl"].is_number())
    fail_user(
        "{}: key 'ppl' (a number) is missing; expected a report written by presso eval --json",
        path);
  return report["ppl"].get<double>();
}

}  // namespace

nlohmann::json run_eval(const EvalOptions& options) {
  if (options.max_increase && options.baseline_path.empty())
    fail_user("--max-increase needs --baseline");
  const torch::Device device = parse_device(options.device);
  // Read the baseline before the long work, so a bad path fails at once.
  std::optional<double> base_ppl;
  if (!options.baseline_path.empty()) base_ppl = baseline_ppl(options.baseline_path);

  const std::string text = read_file_bytes(options.data_path);
  Model model = Model::open(options.model_dir);
  if (!options.adapter_dir.empty()) {
    std::vector<std::string> linears;
    for (const auto& linear : model.linears()) linears.push_back(linear.name);
    model.set_lowrank_paths(read_peft_adapter(options.adapter_dir, linears));
  }
  model.to(device);
  const Tokenizer tokenizer = Tokenizer::from_model_dir(options.model_dir);
  const auto tokenize_start = std::chrono::steady_clock::now();
  const std::vector<int32_t> tokens = tokenizer.encode(text, /*add_special_tokens=*/false);
  const double tokenize_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - tokenize_start).count();

  PerplexityOptions ppl_options;
  ppl_options.seqlen = options.seqlen;
  ppl_options.max_windows = options.max_windows;
  ppl_options.batch_size = options.batch_size;
  ppl_options.device = device;
  int64_t total = count_windows(static_cast<int64_t>(tokens.size()), options.seqlen);
  if (options.max_windows) total = std::min(total, *options.max_windows);
  std::unique_ptr<Progress> progress;
  if (options.progress) {
    progress = std::make_unique<Progress>("eval", total, "windows");
    ppl_options.on_batch = [&progress, done = int64_t{0}](int64_t windows_done) mutable {
      progress->advance(windows_done - done);
      done = windows_done;
    };
  }
  const PerplexityResult result = compute_perplexity(model, tokens, ppl_options);
  if (progress) progress->finish();

  nlohmann::json report = {
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
      {"adapter",
       options.adapter_dir.empty() ? nlohmann::json(nullptr) : nlohmann::json(options.adapter_dir)},
      {"model_type", model.config().model_type},
      {"data", options.data_path},
      {"device", device.str()},
      {"protocol",
       "whole text tokenized without special tokens; non-overlapping windows of seqlen tokens "
       "from the start; no BOS; ppl = exp(sum NLL of tokens 1..seqlen-1 / count)"},
      {"versions", {{"presso", PRESSO_VERSION}, {"libtorch", libtorch_description()}}},
  };
  bool regressed = false;
  if (base_ppl) {
    const double increase = result.ppl / *base_ppl - 1.0;
    regressed = options.max_increase && increase > *options.max_increase;
    report["baseline"] = {
        {"path", options.baseline_path},
        {"ppl", *base_ppl},
        {"increase", increase},
        {"max_increase",
         options.max_increase ? nlohmann::json(*options.max_increase) : nlohmann::json(nullptr)},
        {"passed", !regressed}};
  }
  if (!options.json_path.empty()) write_file_atomically(options.json_path, report.dump(2) + "\n");
  if (regressed)
    throw RegressionError(
        fmt::format("perplexity {:.4f} is {:.2f}% above the baseline {:.4f} ({}), more than the "
                    "allowed {:.2f}%",
                    result.ppl, 100.0 * report["baseline"]["increase"].get<double>(), *base_ppl,
                    options.baseline_path, 100.0 * *options.max_increase));
  return report;
}

}  // namespace presso

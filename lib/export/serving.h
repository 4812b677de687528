// lib/export: which serving engines run a quantized checkpoint, and on which kernel — the
// compatibility table of docs/formats.md ("Serving engines"), read from the loaders' source. One
// rule set per quant_method applies to what config.json says (its dtype and
// quantization_config), so the same verdict covers a plan before any work (the config its
// format row would write) and any output directory, presso's or another tool's.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/export/formats.h"
#include "lib/export/linear_plan.h"

namespace presso {

class Model;

enum class ServingSupport {
  kFast,     // runs on one of the engine's fast kernels (vLLM's Marlin / Machete family)
  kRuns,     // loads and runs, on a slower or generic path
  kRefuses,  // the loader raises, or the engine would not start
};

struct EngineVerdict {
  std::string engine;  // "vLLM", "GPTQModel / transformers", ...
  ServingSupport support = ServingSupport::kRefuses;
  std::string kernel;  // what runs it ("gptq_marlin"), or empty when refused
  std::string why;     // the loader's rule that decided, short
};

struct ServingVerdict {
  std::string method;       // quant_method; empty when config.json has none
  std::string summary;      // "gptq 4-bit asymmetric group 128 (gptq_v2), dtype float16"
  std::vector<EngineVerdict> engines;
  std::vector<std::string> notes;  // deprecations and the like, not verdicts

  bool quantized() const { return !method.empty(); }
  // Whether some engine runs it on a fast kernel (always true for an unquantized checkpoint).
  bool fast() const;
};

// From a whole config.json (`dtype` or `torch_dtype`, and `quantization_config`). UserError
// naming `config_path` and the key for a quantization_config that is not an object.
ServingVerdict serving_verdict(const nlohmann::json& config, const std::string& config_path);
// `presso serve-check DIR`: the verdict of DIR/config.json. UserError when it is missing or not
// JSON.
ServingVerdict serving_verdict_of_dir(const std::string& dir);

// The verdict of the checkpoint `format` would write for `stored` (every linear the job changes),
// before any work: the format row's quantization_config and model dtype (else the model's).
// Assumes checkpoint_problems() found nothing.
ServingVerdict plan_serving_verdict(OutputFormat format, const Model& model,
                                    const std::vector<LinearPlan>& stored);
// The packed formats that can hold `stored` and whose checkpoint some engine runs on a fast
// kernel, in table order.
std::vector<std::string> fast_formats(const Model& model, const std::vector<LinearPlan>& stored);

// Lines for the terminal: the summary, one line per engine, the notes.
std::string verdict_text(const ServingVerdict& verdict);

// What `compress` and `recipe check` print before any work: the plan's verdict and, when no fast
// kernel runs it, the formats that would. With `strict`, that case is a UserError saying both.
std::string plan_serving_report(OutputFormat format, const Model& model,
                                const std::vector<LinearPlan>& stored, bool strict);

}  // namespace presso

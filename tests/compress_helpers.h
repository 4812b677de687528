// Shared by the tests that run `compress`: a recipe written to a temp folder, a compression job
// with the calibration protocol, and perplexity of a directory on the eval text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/compress/driver.h"
#include "lib/eval/eval_job.h"
#include "lib/recipe/option_groups.h"
#include "passes/registry.h"
#include "tests/temp_dir.h"

namespace presso::test {

// Evaluation of `model_dir` on `text` over the first `windows` windows of `seqlen` tokens.
inline EvalOptions eval_options(const std::string& model_dir, const std::string& text,
                                int64_t windows, int64_t seqlen) {
  EvalOptions options;
  options.model_dir = model_dir;
  options.data_path = text;
  options.seqlen = seqlen;
  options.max_windows = windows;
  options.progress = false;
  return options;
}

// Perplexity of `model_dir` (with a PEFT adapter when given) on `text` over the first `windows`
// windows of `seqlen` tokens.
inline double perplexity(const std::string& model_dir, const std::string& text, int64_t windows,
                         int64_t seqlen = 512, const std::string& adapter_dir = "") {
  EvalOptions options = eval_options(model_dir, text, windows, seqlen);
  options.adapter_dir = adapter_dir;
  return run_eval(options)["ppl"].get<double>();
}

// A one-pass recipe `passes: [- pass: {options}]`, written as `name`.yaml into `dir`.
inline std::string write_recipe(const TempDir& dir, const std::string& name,
                                const std::string& pass, const std::string& options) {
  return dir.write(name + ".yaml", "passes:\n  - " + pass + ": {" + options + "}\n");
}

// The registered passes plus a test pass `name` (options: targets and ignore) built by `make`.
inline PassRegistry registry_with_test_pass(const std::string& name,
                                            std::function<std::unique_ptr<Pass>()> make) {
  PassSchema schema;
  schema.name = name;
  schema.summary = "test pass";
  schema.options = target_options();
  PassRegistry registry = pass_registry();
  registry.push_back({schema, [make](const PassOptions&) { return make(); }});
  return registry;
}

inline CompressOptions compress_options(const std::string& model, const std::string& recipe,
                                        const std::string& calib, const std::string& out,
                                        int64_t nsamples, int64_t seqlen) {
  CompressOptions options;
  options.model_dir = model;
  options.recipe_path = recipe;
  options.calibration.path = calib;
  options.output_dir = out;
  options.nsamples = nsamples;
  options.seqlen = seqlen;
  options.seed = 0;
  return options;
}

// Compresses `model` with the recipe file `recipe` into dir/`name` (calibration: `calib_windows`
// windows of 512 tokens of `calib`, none when `calib` is empty) and returns the output's
// perplexity on `eval` over its first `eval_windows` windows of 512.
inline double compress_and_evaluate(const TempDir& dir, const std::string& model,
                                    const std::string& recipe, const std::string& name,
                                    const std::string& calib, int64_t calib_windows,
                                    const std::string& eval, int64_t eval_windows) {
  const std::string out = dir.file(name);
  compress_model(compress_options(model, recipe, calib, out, calib_windows, 512), pass_registry());
  return perplexity(out, eval, eval_windows);
}

}  // namespace presso::test

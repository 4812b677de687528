#include "lib/compress/driver.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "calibration/windows.h"
#include "lib/common/errors.h"
#include "lib/common/interrupt.h"
#include "lib/compress/activations.h"
#include "lib/compress/block_session.h"
#include "lib/compress/block_writer.h"
#include "lib/compress/compression_plan.h"
#include "lib/compress/output_error.h"
#include "lib/eval/runtime.h"
#include "lib/model/model.h"
#include "lib/recipe/recipe.h"
#include "lib/tokenizer/tokenizer.h"

namespace presso {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// int64 [nsamples, seqlen] calibration windows, or an undefined tensor without --calib.
torch::Tensor calibration_windows(const CompressOptions& options, const Model& model) {
  if (options.calibration.path.empty()) return {};
  CalibrationSource source = options.calibration;
  Tokenizer tokenizer = Tokenizer::from_model_dir(model.dir());
  if (!source.document_separator && model.config().eos_token_id) {
    source.document_separator = static_cast<int32_t>(*model.config().eos_token_id);
  }
  if (!source.vocab_size) source.vocab_size = model.config().vocab_size;
  std::vector<int32_t> tokens = load_calibration_tokens(source, tokenizer);
  try {
    return sample_windows(tokens, options.nsamples, options.seqlen, options.seed);
  } catch (const UserError& e) {
    fail_user("{}: {}", source.path, e.what());
  }
}

// VmHWM of this process's address space, in MiB; nullopt off Linux. Not getrusage's ru_maxrss:
// that also counts the address space of the process that exec'd us (a vfork parent's), which
// can be far larger than anything presso itself touched.
std::optional<double> peak_resident_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return std::nullopt;
}

nlohmann::json scheme_json(const QuantScheme& scheme) {
  return {{"bits", scheme.bits},
          {"group_size", scheme.group_size},
          {"symmetric", scheme.symmetric}};
}

}  // namespace

nlohmann::json compress_model(const CompressOptions& options, const PassRegistry& registry,
                              const CompressCallbacks& callbacks) {
  torch::NoGradGuard no_grad;
  const auto job_start = Clock::now();
  const torch::Device device = parse_device(options.device);
  Model model = Model::open(options.model_dir);
  model.to(device);
  CompressionPlan job = plan_compression(options.recipe_path, model, registry, options.format,
                                         !options.calibration.path.empty());
  if (callbacks.on_warning) {
    for (const auto& note : job.notes) callbacks.on_warning(note);
  }

  // Writers first: a bad output directory is reported before any work.
  std::vector<std::unique_ptr<CheckpointWriter>> writers;
  writers.push_back(std::make_unique<CheckpointWriter>(options.format, options.output_dir, model,
                                                       options.overwrite));
  if (!options.dense_output_dir.empty()) {
    writers.push_back(std::make_unique<CheckpointWriter>(
        OutputFormat::kDense, options.dense_output_dir, model, options.overwrite));
  }
  BlockWriter block_writer(model, writers);

  auto report_progress = [&](CompressProgress::Stage stage, int block) {
    if (callbacks.on_progress) callbacks.on_progress({stage, block, model.num_blocks()});
  };
  report_progress(CompressProgress::Stage::kCalibration, -1);
  const torch::Tensor windows = calibration_windows(options, model);
  std::unique_ptr<BlockActivations> activations;
  if (windows.defined()) {
    activations = std::make_unique<BlockActivations>(
        model, windows, options.bf16_activations ? torch::kBFloat16 : torch::kFloat32,
        options.batch_size);
  }
  model.release_outer();  // the embeddings are not needed again; the writer re-reads them raw
  block_writer.write_outer();

  nlohmann::json layers = nlohmann::json::array();
  nlohmann::json blocks = nlohmann::json::array();
  for (int index = 0; index < model.num_blocks(); ++index) {
    check_interrupted();
    auto start = Clock::now();
    DecoderBlock block = model.load_block(index);
    const double load_seconds = seconds_since(start);

    BlockSession session(model, block, activations.get());
    std::vector<std::vector<std::string>> targets(job.passes.size());
    for (const auto& linear : block.linears) {
      auto it = job.selected.find(linear.name);
      if (it == job.selected.end()) continue;
      const torch::ScalarType dtype = block_writer.weight_dtype(linear);
      session.add_linear(it->second->linear, format_grid_options(options.format, dtype), dtype);
      for (size_t selected : it->second->passes) targets[selected].push_back(linear.name);
    }
    std::vector<StatsRequest> requests;
    for (const auto& pass : job.passes) requests.push_back(pass->wants());
    start = Clock::now();
    session.gather_statistics(targets, requests);
    const double statistics_seconds = seconds_since(start);

    start = Clock::now();
    for (size_t pass_index = 0; pass_index < job.passes.size(); ++pass_index) {
      session.run_pass(*job.passes[pass_index], targets[pass_index]);
      check_interrupted();
    }
    const double pass_seconds = seconds_since(start);

    start = Clock::now();
    OutputErrorMeter meter = session.advance_activations();
    const double rerun_seconds = seconds_since(start);

    start = Clock::now();
    block_writer.write_block(block, session.states());
    const double write_seconds = seconds_since(start);

    for (const auto& linear : block.linears) {
      auto it = job.selected.find(linear.name);
      if (it == job.selected.end()) continue;
      const LinearState& state = session.states().at(linear.name);
      nlohmann::json passes = nlohmann::json::array();
      for (size_t selected : it->second->passes) passes.push_back(job.recipe.passes[selected].pass);
      nlohmann::json layer = {{"name", linear.name},
                              {"shape", {state.info.out_features, state.info.in_features}},
                              {"passes", passes}};
      layer["scheme"] = state.quant ? scheme_json(state.quant->scheme) : nlohmann::json(nullptr);
      if (state.mask) {
        layer["sparsity"] = 1.0 - state.mask->to(torch::kFloat64).mean().item<double>();
      }
      if (!state.metrics.empty()) layer["metrics"] = state.metrics;
      if (!state.notes.empty()) {
        layer["notes"] = state.notes;
        for (const auto& note : state.notes) {
          if (callbacks.on_warning) callbacks.on_warning(linear.name + ": " + note);
        }
      }
      layer["relative_output_error"] =
          meter.tracks(linear.name) ? nlohmann::json(meter.relative_error(linear.name))
                                    : nlohmann::json(nullptr);
      layers.push_back(layer);
    }
    blocks.push_back({{"block", index},
                      {"seconds",
                       {{"load", load_seconds},
                        {"statistics", statistics_seconds},
                        {"passes", pass_seconds},
                        {"rerun", rerun_seconds},
                        {"write", write_seconds}}}});
    report_progress(CompressProgress::Stage::kBlockDone, index);
  }

  nlohmann::json report = {
      {"presso_version", PRESSO_VERSION},
      {"libtorch", libtorch_description()},
      {"model", options.model_dir},
      {"model_type", model.config().model_type},
      {"recipe_file", options.recipe_path},
      {"recipe", print_recipe(job.recipe)},
      {"format", output_format_name(options.format)},
      {"device", device.str()},
      {"activations_dtype", options.bf16_activations ? "bfloat16" : "float32"},
      {"warnings", job.notes},
      {"layers", layers},
      {"blocks", blocks}};
  if (windows.defined()) {
    report["calibration"] = {{"file", options.calibration.path},
                             {"format", calib_format_name(options.calibration.format)},
                             {"nsamples", options.nsamples},
                             {"seqlen", options.seqlen},
                             {"seed", options.seed}};
  } else {
    report["calibration"] = nullptr;
  }
  report_progress(CompressProgress::Stage::kWriting, model.num_blocks());
  report["seconds_total"] = seconds_since(job_start);
  const std::optional<double> peak = peak_resident_mib();
  report["peak_rss_mib"] = peak ? nlohmann::json(*peak) : nlohmann::json(nullptr);
  for (auto& writer : writers) writer->finish(report);
  return report;
}

}  // namespace presso

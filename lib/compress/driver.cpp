#include "lib/compress/driver.h"

#include <fmt/format.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "calibration/windows.h"
#include "lib/common/errors.h"
#include "lib/common/interrupt.h"
#include "lib/common/output_paths.h"
#include "lib/common/system_memory.h"
#include "lib/common/version.h"
#include "lib/compress/activations.h"
#include "lib/compress/block_session.h"
#include "lib/compress/block_writer.h"
#include "lib/compress/compression_plan.h"
#include "lib/compress/memory_estimate.h"
#include "lib/compress/output_error.h"
#include "lib/compress/overlap.h"
#include "lib/compress/resume_journal.h"
#include "lib/eval/runtime.h"
#include "lib/export/serving.h"
#include "lib/model/model.h"
#include "lib/quant/device_memory.h"
#include "lib/recipe/recipe.h"
#include "lib/sparse/mask.h"
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
  if (!source.document_separator && model.config().eos_token_id) {
    source.document_separator = static_cast<int32_t>(*model.config().eos_token_id);
  }
  if (!source.vocab_size) source.vocab_size = model.config().vocab_size;
  // Pre-tokenized data needs no tokenizer.json (nor does the checkpoint have to ship one).
  std::optional<Tokenizer> tokenizer;
  if (calibration_needs_tokenizer(source)) tokenizer = Tokenizer::from_model_dir(model.dir());
  std::vector<int32_t> tokens = load_calibration_tokens(source, tokenizer ? &*tokenizer : nullptr);
  try {
    return sample_windows(tokens, options.nsamples, options.seqlen, options.seed);
  } catch (const UserError& e) {
    fail_user("{}: {}", source.path, e.what());
  }
}

// What the passes left on one linear, for the report.
LayerReport layer_report(const LinearState& state, const std::vector<std::string>& passes,
                         const OutputErrorMeter& meter) {
  LayerReport layer;
  layer.name = state.info.name;
  layer.out_features = state.info.out_features;
  layer.in_features = state.info.in_features;
  layer.passes = passes;
  if (state.quant) layer.scheme = state.quant->scheme;
  if (state.mask) layer.sparsity = mask_sparsity(*state.mask);
  if (state.linear->lowrank) layer.lowrank_rank = state.linear->lowrank->a.size(0);
  layer.metrics = state.metrics;
  layer.notes = state.notes;
  if (meter.tracks(layer.name)) layer.relative_output_error = meter.relative_error(layer.name);
  return layer;
}

// How the calibration windows run through the model: the windows (undefined without --calib),
// the activations' dtype and the windows per batch.
struct CalibrationRun {
  torch::Tensor windows;
  torch::ScalarType dtype = torch::kFloat32;
  int64_t batch_size = 0;
  bool tf32 = false;  // the forwards' fp32 products in TF32 (tf32_scope.h)
};

class CheckpointView : public ModelView {
 public:
  CheckpointView(const Model& model, std::vector<std::string> targets,
                 const CalibrationRun& calibration)
      : model_(model), targets_(std::move(targets)), calibration_(calibration) {
    for (const auto& linear : model.linears()) blocks_[linear.name] = linear.block;
  }
  const std::vector<std::string>& targets() const override { return targets_; }
  torch::Tensor original_weight(const std::string& linear_name) const override {
    return model_.load_linear_weight(linear_name);
  }
  int block_of(const std::string& linear_name) const override {
    auto it = blocks_.find(linear_name);
    if (it == blocks_.end()) fail_internal("block_of: '{}' is not a linear", linear_name);
    return it->second;
  }
  bool has_calibration() const override { return calibration_.windows.defined(); }

  // A stream of its own, advanced through blocks as the checkpoint holds them and dropped at the
  // end, so the compression stream that follows starts from the embeddings again; it stops after
  // the last block with an observer.
  void observe_dense(const ObserverMap& observers) const override {
    if (!has_calibration()) fail_internal("observe_dense without calibration windows");
    int last_block = -1;
    for (const auto& [name, observer] : observers) {
      if (std::find(targets_.begin(), targets_.end(), name) == targets_.end() || !observer) {
        fail_internal("observe_dense: an observer for '{}', which is not a target", name);
      }
      last_block = std::max(last_block, block_of(name));
    }
    if (last_block < 0) return;
    BlockActivations activations(model_, calibration_.windows, calibration_.dtype,
                                 calibration_.batch_size, calibration_.tf32);
    const LinearHook hook = [&observers](const std::string& name, const torch::Tensor& input) {
      auto it = observers.find(name);
      if (it != observers.end()) it->second->observe(input);
    };
    for (int index = 0; index <= last_block; ++index) {
      const DecoderBlock block = model_.load_block(index);
      activations.run(model_, block, &hook, /*advance=*/index < last_block);
    }
  }

 private:
  const Model& model_;
  std::vector<std::string> targets_;
  const CalibrationRun& calibration_;
  std::map<std::string, int> blocks_;  // block of every linear, by full name
};

// Each pass's prepare() with the linears it targets in the whole model.
void prepare_passes(const CompressionPlan& job, const Model& model,
                    const CalibrationRun& calibration) {
  for (size_t index = 0; index < job.passes.size(); ++index) {
    std::vector<std::string> targets;
    for (const auto& layer : job.plan.layers) {
      if (!job.selected.count(layer.linear.name)) continue;
      if (std::find(layer.passes.begin(), layer.passes.end(), index) != layer.passes.end()) {
        targets.push_back(layer.linear.name);
      }
    }
    job.passes[index]->prepare(CheckpointView(model, std::move(targets), calibration));
  }
}

// What every block of the loop shares.
struct BlockRun {
  const CompressOptions& options;
  const Model& model;
  const CompressionPlan& job;
  BlockWriter& writer;
  BlockActivations* activations;  // null without calibration
  BlockReader& reader;
  BackgroundTasks& writes;  // the writer's and the journal's work, in block order
  ResumeJournal& journal;
  CompressReport& report;
  const CompressCallbacks& callbacks;
};

void report_progress(const CompressCallbacks& callbacks, const Model& model,
                     CompressProgress::Stage stage, int block, std::string step = {}) {
  if (callbacks.on_progress)
    callbacks.on_progress({stage, block, model.num_blocks(), std::move(step)});
}

// A finished block's entries in the report (and its layers' notes as warnings).
void add_to_report(const BlockRun& run, const DecoderBlock& block,
                   const std::vector<LayerReport>& layers, const BlockTimings& timings) {
  for (const auto& layer : layers) {
    run.report.layers.push_back(layer);
    for (const auto& note : layer.notes) {
      if (run.callbacks.on_warning) run.callbacks.on_warning(layer.name + ": " + note);
    }
  }
  for (const auto& linear : block.linears) {
    if (run.job.selected.count(linear.name) && linear.lowrank) {
      run.report.lowrank_parameters += linear.lowrank->a.numel() + linear.lowrank->b.numel();
    }
  }
  run.report.blocks.push_back(timings);
}

// Ends a block's step: waits for the device's queued work, so that the step's time is its own (a
// GPU runs ahead), and records the step's seconds and, on a GPU, its peak of device memory.
void end_step(const torch::Device& device, Clock::time_point start, const char* step,
              double& seconds, BlockTimings& timings) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
  seconds = seconds_since(start);
  if (const std::optional<uint64_t> peak = take_device_peak(device)) {
    timings.peak_device_mib[step] = static_cast<double>(*peak) / 1048576.0;
  }
}

int next_block(const Model& model, int index) {
  return index + 1 < model.num_blocks() ? index + 1 : -1;
}

// Load, statistics, passes, re-run (advancing the activations), write, record.
void compress_block(const BlockRun& run, int index) {
  const CompressionPlan& job = run.job;
  auto progress = [&](std::string step) {
    report_progress(run.callbacks, run.model, CompressProgress::Stage::kBlockStep, index,
                    std::move(step));
  };
  BlockTimings timings;
  timings.block = index;
  const torch::Device device = run.model.device();
  progress("load");
  auto start = Clock::now();
  DecoderBlock block = run.reader.take(index, next_block(run.model, index));
  end_step(device, start, "load", timings.load, timings);

  BlockSession session(run.model, block, run.activations);
  std::vector<std::vector<std::string>> targets(job.passes.size());
  for (const auto& linear : block.linears) {
    auto it = job.selected.find(linear.name);
    if (it == job.selected.end()) continue;
    const torch::ScalarType dtype = run.writer.weight_dtype(linear);
    session.add_linear(it->second->linear, format_grid_options(run.options.format, dtype), dtype);
    for (size_t selected : it->second->passes) targets[selected].push_back(linear.name);
  }
  std::vector<StatsRequest> requests;
  std::vector<std::vector<std::string>> gathered = targets;
  for (size_t i = 0; i < job.passes.size(); ++i) {
    requests.push_back(job.passes[i]->wants());
    if (job.passes[i]->true_sequential() && !targets[i].empty())
      gathered[i] = input_groups(session.family(), block, targets[i]).front();
  }
  progress("statistics");
  start = Clock::now();
  session.gather_statistics(gathered, requests);
  end_step(device, start, "statistics", timings.statistics, timings);

  start = Clock::now();
  for (size_t pass_index = 0; pass_index < job.passes.size(); ++pass_index) {
    progress(job.recipe.passes[pass_index].pass);
    session.run_pass(*job.passes[pass_index], targets[pass_index]);
    check_interrupted();
  }
  end_step(device, start, "passes", timings.passes, timings);

  progress("re-run");
  start = Clock::now();
  OutputErrorMeter meter = session.advance_activations();
  end_step(device, start, "rerun", timings.rerun, timings);

  std::vector<LayerReport> layers;
  for (const auto& linear : block.linears) {
    auto it = job.selected.find(linear.name);
    if (it == job.selected.end()) continue;
    std::vector<std::string> passes;
    for (size_t selected : it->second->passes) passes.push_back(job.recipe.passes[selected].pass);
    layers.push_back(layer_report(session.states().at(linear.name), passes, meter));
  }

  // Written from a host copy, in the background with --overlap-io; the time counted is what the
  // block waited for (the copy, and the previous block's write still running).
  progress("write");
  start = Clock::now();
  auto host = std::make_shared<const HostBlock>(host_copy(block, session.states()));
  run.writes.wait();
  end_step(device, start, "write", timings.write, timings);
  run.writes.submit([&writer = run.writer, &journal = run.journal, host, layers, timings] {
    writer.write_block(host->block, host->states);
    journal.record(host->block, host->states, layers, timings);
  });
  add_to_report(run, block, layers, timings);
}

// A block the interrupted run finished, from its record: written again, and run over the
// calibration windows to make the next block's inputs, as the interrupted run did.
void replay_block(const BlockRun& run, int index) {
  report_progress(run.callbacks, run.model, CompressProgress::Stage::kBlockStep, index,
                  "replay from the resume journal");
  DecoderBlock block = run.reader.take(index, next_block(run.model, index));
  const RecordedBlock recorded = run.journal.restore(block);
  auto host = std::make_shared<const HostBlock>(host_copy(block, recorded.states));
  run.writes.submit(
      [&writer = run.writer, host] { writer.write_block(host->block, host->states); });
  if (run.activations) run.activations->run(run.model, block, nullptr, /*advance=*/true);
  add_to_report(run, block, recorded.layers, recorded.timings);
}

}  // namespace

bool overlaps_io(const CompressOptions& options, const torch::Device& device) {
  return options.overlap_io == OverlapIo::kOn ||
         (options.overlap_io == OverlapIo::kAuto && device.is_cuda());
}

PreparedJob prepare_job(const CompressOptions& options, const PassRegistry& registry) {
  check_output_paths({{"-o", options.output_dir}, {"--dense-copy", options.dense_output_dir}},
                     {{"the model", options.model_dir}});
  const torch::Device device = parse_device(options.device);
  Model model = Model::open(options.model_dir);
  model.check_tensor_shapes();
  if (!options.calibration.path.empty()) model.check_sequence_length(options.seqlen, "--seqlen");
  model.to(device);
  if (!options.calibration.path.empty()) {
    check_calibration_fits(model.config(), options.nsamples, options.seqlen,
                           options.bf16_activations ? torch::kBFloat16 : torch::kFloat32, device);
  }
  CompressionPlan job = plan_compression(options.recipe_path, model, registry, options.format,
                                         !options.calibration.path.empty());
  std::string serving =
      plan_serving_report(options.format, model, job.stored, options.strict_serving);
  if (device.is_cuda()) {
    check_device_fits(estimate_memory(options, job, model), device.str(), device_memory(device));
  }
  return {std::move(model), std::move(job), std::move(serving)};
}

CompressReport compress_model(const CompressOptions& options, const PassRegistry& registry,
                              const CompressCallbacks& callbacks) {
  torch::NoGradGuard no_grad;
  const auto job_start = Clock::now();
  PreparedJob prepared = prepare_job(options, registry);
  Model& model = prepared.model;
  CompressionPlan& job = prepared.job;
  const torch::Device device = model.device();
  if (callbacks.on_warning) {
    for (const auto& note : job.notes) callbacks.on_warning(note);
  }
  if (callbacks.on_serving) callbacks.on_serving(prepared.serving);

  // Writers first: a bad output directory is reported before any work.
  std::vector<std::unique_ptr<CheckpointWriter>> writers;
  writers.push_back(std::make_unique<CheckpointWriter>(options.format, options.output_dir, model,
                                                       options.overwrite));
  if (!options.dense_output_dir.empty()) {
    writers.push_back(std::make_unique<CheckpointWriter>(
        OutputFormat::kDense, options.dense_output_dir, model, options.overwrite));
  }
  if (options.merge_adapter) {
    if (options.format != OutputFormat::kDense) {
      fail_user(
          "--merge-adapter needs --format dense (a packed format stores the codes; the "
          "low-rank paths go to its adapter/)");
    }
    writers.front()->merge_lowrank();
  }
  for (auto& writer : writers) {
    writer->set_plan(job.stored);
    for (const auto& stale : writer->removed_stale_temporaries()) {
      if (callbacks.on_warning)
        callbacks.on_warning("removed " + stale +
                             ", the temporary output of a run that was killed");
    }
  }
  BlockWriter block_writer(model, writers);

  ResumeJournal journal(options, resume_identity(options, model, print_recipe(job.recipe)),
                        callbacks.on_warning);
  report_progress(callbacks, model, CompressProgress::Stage::kCalibration, -1);
  // Before prepare: a pass deciding across layers may run the windows through the dense model.
  const CalibrationRun calibration{calibration_windows(options, model),
                                   options.bf16_activations ? torch::kBFloat16 : torch::kFloat32,
                                   options.batch_size, device.is_cuda() && !options.fp32_matmul};
  const torch::Tensor& windows = calibration.windows;
  prepare_passes(job, model, calibration);
  std::unique_ptr<BlockActivations> activations;
  if (windows.defined()) {
    activations = std::make_unique<BlockActivations>(model, windows, calibration.dtype,
                                                     calibration.batch_size, calibration.tf32);
  }
  model.release_outer();  // the embeddings are not needed again; the writer re-reads them raw
  block_writer.write_outer();

  CompressReport report;
  const bool overlap = overlaps_io(options, device);
  BlockReader reader(model, overlap);
  BackgroundTasks writes(overlap, device);
  const BlockRun run{options, model,  job,     block_writer, activations.get(),
                     reader,  writes, journal, report,       callbacks};
  try {
    const int recorded = journal.recorded_blocks();
    for (int index = 0; index < model.num_blocks(); ++index) {
      check_interrupted();
      if (index < recorded) {
        replay_block(run, index);
      } else {
        compress_block(run, index);
      }
      report_progress(callbacks, model, CompressProgress::Stage::kBlockDone, index);
    }
    writes.wait();
  } catch (const Interrupted&) {
    writes.wait_quietly();  // the journal then holds every block whose write finished
    if (journal.recorded_blocks() == 0) {
      journal.remove();
      throw;
    }
    throw Interrupted(fmt::format(
        "interrupted; nothing was written to {}, but the {} finished blocks are recorded in {}: "
        "the same command with --resume continues from block {}",
        options.output_dir, journal.recorded_blocks(),
        ResumeJournal::directory_for(options.output_dir), journal.recorded_blocks() + 1));
  } catch (...) {
    // A failed run leaves nothing behind; only a stopped one (Ctrl-C, a kill) can be resumed.
    writes.wait_quietly();
    journal.remove();
    throw;
  }

  report.presso_version = presso_version();
  report.presso_commit = build_commit();
  report.libtorch = libtorch_description();
  report.model = options.model_dir;
  report.model_type = model.config().model_type;
  report.recipe_file = options.recipe_path;
  report.recipe = print_recipe(job.recipe);
  report.format = output_format_name(options.format);
  report.device = device.str();
  report.activations_dtype = options.bf16_activations ? "bfloat16" : "float32";
  report.warnings = job.notes;
  report.model_parameters = model.parameter_count();
  if (windows.defined()) {
    report.calibration =
        CalibrationReport{options.calibration.path, calib_format_name(options.calibration.format),
                          options.nsamples, options.seqlen, options.seed};
  }
  report_progress(callbacks, model, CompressProgress::Stage::kWriting, model.num_blocks());
  report.seconds_total = seconds_since(job_start);
  if (const auto peak = process_memory_bytes("VmHWM")) report.peak_rss_mib = *peak / 1048576.0;
  const nlohmann::json report_json = report.to_json();
  // Every output complete before any is installed: a run leaves all of them or none.
  for (auto& writer : writers) writer->assemble(report_json);
  for (auto& writer : writers) writer->install();
  journal.remove();
  return report;
}

}  // namespace presso

// The block-wise compression driver (`presso compress`): opens the checkpoint, validates the
// recipe against it and the output format, samples the calibration windows, and then, one decoder
// block at a time — load, gather the statistics the passes declared, run the passes in recipe
// order, run the compressed block again to produce the next block's inputs (measuring every
// compressed linear's output error on the way), write, record in the resume journal, free. Peak
// memory is one block plus the activations, never the whole model.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "calibration/calibration_data.h"
#include "lib/compress/compression_plan.h"
#include "lib/compress/pass.h"
#include "lib/compress/report.h"
#include "lib/export/checkpoint_writer.h"

namespace presso {

// Whether the next block is read, and the finished one written, on threads of their own while a
// block computes (overlap.h); auto: on a GPU.
enum class OverlapIo { kAuto, kOn, kOff };

struct CompressOptions {
  std::string model_dir;
  std::string recipe_path;
  std::string output_dir;
  OutputFormat format = OutputFormat::kCompressedTensors;
  // Also write the dense (dequantized) export of the same run here; empty: none.
  std::string dense_output_dir;
  // With format dense: low-rank paths added into the weights instead of written as an adapter.
  bool merge_adapter = false;
  bool overwrite = false;
  // Continue the run that was interrupted writing output_dir from its resume journal
  // (resume_journal.h); without it, a journal of this job is refused and one of another job
  // discarded.
  bool resume = false;
  // Refuse (UserError) a plan whose output no serving engine runs on a fast kernel.
  bool strict_serving = false;
  // Calibration text; its path may be empty only when no pass needs statistics (then no output
  // errors are measured either).
  CalibrationSource calibration;
  int64_t nsamples = 128;
  int64_t seqlen = 512;
  uint64_t seed = 0;
  std::string device = "cpu";
  bool bf16_activations = false;
  // On a GPU, the calibration forwards and statistics in full fp32 instead of TF32 (tf32_scope.h).
  bool fp32_matmul = false;
  OverlapIo overlap_io = OverlapIo::kAuto;
  int64_t batch_size = 0;  // windows per block run; 0 = from the model's widths
};

// What happened, for progress display; `block` is -1 before the first block.
struct CompressProgress {
  enum class Stage { kCalibration, kBlockStep, kBlockDone, kWriting };
  Stage stage;
  int block = -1;
  int num_blocks = 0;
  std::string step;  // kBlockStep: what the block does now ("statistics", "gptq", "re-run")
};

struct CompressCallbacks {
  std::function<void(const CompressProgress&)> on_progress;
  std::function<void(const std::string&)> on_warning;  // recipe notes, pattern warnings
  std::function<void(const std::string&)> on_serving;  // the serving verdict, before any work
};

// The job checked as far as it can be before any work (outputs, model, --seqlen, calibration
// memory, recipe, plan, format, serving), with the model open on the compute device and the
// serving verdict. UserError for whatever would stop the run.
struct PreparedJob {
  Model model;
  CompressionPlan job;
  std::string serving;
};
PreparedJob prepare_job(const CompressOptions& options, const PassRegistry& registry);

// Whether the run overlaps its block I/O with the computation on `device` (options.overlap_io).
bool overlaps_io(const CompressOptions& options, const torch::Device& device);

// Runs the whole job and returns its report (to_json() is presso_report.json). UserError (before
// any work) for a bad recipe, a plan the format cannot store, bad calibration input, a --seqlen
// beyond the model's positions, tensors whose shapes disagree with config.json, or outputs that
// collide (output_paths.h); during the run, naming the block, when the calibration activations
// stop being finite.
CompressReport compress_model(const CompressOptions& options, const PassRegistry& registry,
                              const CompressCallbacks& callbacks = {});

}  // namespace presso

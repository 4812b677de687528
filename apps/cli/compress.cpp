// `presso compress`: one-shot compression of a checkpoint with a recipe.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include "apps/cli/commands.h"
#include "lib/common/interrupt.h"
#include "lib/common/progress.h"
#include "lib/compress/driver.h"
#include "lib/compress/dry_run.h"
#include "lib/eval/runtime.h"
#include "lib/io/safetensors.h"
#include "lib/io/weight_files.h"
#include "passes/registry.h"

namespace presso::cli {
namespace {

// Progress across the blocks: a bar with ETA on a terminal, else a line per block and a
// heartbeat naming what the block is doing (lib/common/progress.h).
class CompressProgressView {
 public:
  explicit CompressProgressView(bool enabled) : enabled_(enabled) {}

  void operator()(const CompressProgress& event) {
    if (!enabled_) return;
    using Stage = CompressProgress::Stage;
    switch (event.stage) {
      case Stage::kCalibration:
        progress_ = std::make_unique<Progress>("compress", event.num_blocks, "blocks");
        progress_->set_step("calibration windows through the embeddings");
        break;
      case Stage::kBlockStep:
        if (progress_)
          progress_->set_step(fmt::format("block {}: {}", event.block + 1, event.step));
        break;
      case Stage::kBlockDone:
        if (progress_) progress_->advance();
        break;
      case Stage::kWriting:
        if (progress_) progress_->finish();
        progress_.reset();
        break;
    }
  }

 private:
  bool enabled_;
  std::unique_ptr<Progress> progress_;
};

void print_summary(const CompressReport& report, const CompressOptions& options) {
  int quantized = 0, pruned = 0, measured = 0;
  double sum = 0.0, worst = -1.0;
  std::string worst_name;
  for (const auto& layer : report.layers) {
    if (layer.scheme) ++quantized;
    if (layer.sparsity) ++pruned;
    if (!layer.relative_output_error) continue;
    const double error = *layer.relative_output_error;
    ++measured;
    sum += error;
    if (error > worst) worst = error, worst_name = layer.name;
  }
  std::printf("compressed %zu linears (%d quantized, %d pruned) in %.1f s\n", report.layers.size(),
              quantized, pruned, report.seconds_total);
  if (measured > 0) {
    std::printf("relative output error: mean %.4f, max %.4f (%s)\n", sum / measured, worst,
                worst_name.c_str());
  }
  if (report.lowrank_parameters > 0) {
    const std::string where = options.merge_adapter ? std::string("merged into the weights")
                                                    : "in " + options.output_dir + "/adapter";
    std::printf("low-rank paths: %lld parameters (%.2f %% of the model), %s\n",
                static_cast<long long>(report.lowrank_parameters),
                100.0 * static_cast<double>(report.lowrank_parameters) /
                    static_cast<double>(std::max<int64_t>(report.model_parameters, 1)),
                where.c_str());
  }
  const auto mib = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  const int64_t before = weight_file_bytes(options.model_dir);
  const int64_t after = weight_file_bytes(options.output_dir);
  std::printf("size on disk: %.1f MiB -> %.1f MiB, %.2f bits per weight\n", mib(before), mib(after),
              8.0 * static_cast<double>(after) /
                  static_cast<double>(std::max<int64_t>(report.model_parameters, 1)));
  std::printf("wrote %s (%s)\n", options.output_dir.c_str(), output_format_name(options.format));
  if (!options.dense_output_dir.empty()) {
    std::printf("wrote %s (dense)\n", options.dense_output_dir.c_str());
  }
}

}  // namespace

void add_compress_command(CLI::App& app) {
  auto options = std::make_shared<CompressOptions>();
  auto format = std::make_shared<std::string>("compressed-tensors");
  auto calib_format = std::make_shared<std::string>("auto");
  auto overlap_io = std::make_shared<std::string>("auto");
  auto progress = std::make_shared<bool>(true);
  CLI::App* cmd = app.add_subcommand(
      "compress",
      "Compress a Hugging Face checkpoint with a recipe, block by block.\n"
      "Calibration windows (--nsamples x --seqlen tokens, starts drawn as PyTorch's\n"
      "torch.manual_seed(seed); torch.randint(0, n - seqlen - 1, (nsamples,)) would) stream\n"
      "through the model one decoder block at a time: each block is loaded, its passes run on\n"
      "the statistics they asked for, it is run again compressed to feed the next block, and\n"
      "written; memory holds one block plus the activations. The output directory appears only\n"
      "when complete (Ctrl-C leaves nothing behind); until then OUT.presso-resume/ records every\n"
      "finished block, so that after a crash, a kill or Ctrl-C the same command with --resume\n"
      "continues from the next one, to the same bytes. presso_report.json in the output records "
      "the\n"
      "recipe, every layer's relative output error ||XW^T - XW'^T|| / ||XW^T|| and timings.\n"
      "Examples:\n"
      "  presso compress tests/data/sotu-llama-16m --recipe configs/rtn-w4g128.yaml \\\n"
      "      --calib tests/data/calib.txt -o out/llama-w4\n"
      "  presso compress MODEL --recipe llmc_recipe.yaml --calib data.jsonl --calib-field text \\\n"
      "      --format gptq -o OUT --device cuda\n"
      "Formats: compressed-tensors (pack-quantized, vLLM's native format), gptq (qweight/\n"
      "qzeros/scales/g_idx, v1 symmetric, v2 asymmetric, float16), awq (AutoAWQ GEMM, float16),\n"
      "dense (dequantized weights, no quantization_config). `presso eval` reads all of them.\n"
      "Before any work it prints which serving engines and kernels will run the output\n"
      "(--strict-serving: exit 2 when none of the fast kernels will).");
  cmd->add_option("model_dir", options->model_dir, "Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--recipe", options->recipe_path,
                  "recipe YAML: presso's `passes:` list or an llm-compressor recipe")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--calib", options->calibration.path,
                  "calibration data: text, .jsonl, or pre-tokenized .safetensors / .json ids "
                  "(required when a pass needs statistics)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", options->output_dir,
                  "output directory (must not exist, see "
                  "--overwrite)")
      ->required();
  cmd->add_option("--format", *format, "compressed-tensors | gptq | awq | dense")
      ->capture_default_str();
  cmd->add_flag("--merge-adapter", options->merge_adapter,
                "with --format dense: add the low-rank paths (lowrank pass) into the weights "
                "instead of writing OUT/adapter/");
  cmd->add_option("--dense-copy", options->dense_output_dir,
                  "also write the dense (dequantized) export of the same run here");
  cmd->add_option("--nsamples", options->nsamples, "calibration windows")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--seqlen", options->seqlen, "tokens per calibration window")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--seed", options->seed, "seed of the window sampling")->capture_default_str();
  cmd->add_option("--calib-format", *calib_format,
                  "auto (by extension) | text | jsonl | safetensors | json-ids")
      ->capture_default_str();
  cmd->add_option("--calib-field", options->calibration.field,
                  "JSONL: the field holding each document's text")
      ->capture_default_str();
  cmd->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_flag("--bf16-activations", options->bf16_activations,
                "keep the calibration activations in bf16 between blocks (half the memory)");
  cmd->add_flag("--fp32-matmul", options->fp32_matmul,
                "on a GPU, run the calibration forwards and the XᵀX statistics in full fp32 "
                "(default: TF32 tensor cores with fp32 accumulation, 8x faster, same "
                "perplexity; the factorizations and sweeps are fp32 either way)");
  cmd->add_option("--overlap-io", *overlap_io,
                  "auto | on | off: read the next block and write the finished one on threads "
                  "of their own while a block computes (auto: on a GPU; on the CPU the cores "
                  "are busy and the block in flight costs host memory)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "on", "off"}));
  cmd->add_option("--batch-size", options->batch_size,
                  "calibration windows per block run; 0 = auto")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--strict-serving", options->strict_serving,
                "exit 2 before any work when no serving engine runs the output on a fast kernel "
                "(the verdict printed first says which format would)");
  cmd->add_flag("--overwrite", options->overwrite,
                "replace an earlier presso output (a directory with presso_report.json; never "
                "the input or any other directory), and start over where an interrupted run "
                "left a resume journal");
  cmd->add_flag("--resume", options->resume,
                "continue the interrupted run of the same command from OUT.presso-resume/: its "
                "finished blocks are replayed, not recomputed (a changed input or option starts "
                "over)");
  auto dry_run = std::make_shared<bool>(false);
  cmd->add_flag("--dry-run", *dry_run,
                "check everything and print the plan per linear (passes, stored scheme, bytes), "
                "the output's size and the estimated peak host/GPU memory and time; no weight "
                "is read and nothing is written");
  cmd->add_flag("!--no-progress", *progress, "no progress output");
  cmd->callback([options, format, calib_format, overlap_io, progress, dry_run] {
    options->format = output_format_from_name(*format);
    options->overlap_io = *overlap_io == "on"    ? OverlapIo::kOn
                          : *overlap_io == "off" ? OverlapIo::kOff
                                                 : OverlapIo::kAuto;
    options->calibration.format = calib_format_from_name(*calib_format);
    if (*dry_run) {
      std::fputs(format_dry_run(dry_run_compress(*options, pass_registry()), *options).c_str(),
                 stdout);
      return;
    }
    install_interrupt_handler();
    // Keeping freed memory spares the page faults that cost half the run time here, but the
    // heap then fragments with the size of the blocks (3 GB peak for a 1.6 GB checkpoint whose
    // blocks need 0.5 GB); past 512 MB of weights, memory matters more than speed.
    if (TensorStore::open_dir(options->model_dir).total_bytes() < (uint64_t{512} << 20)) {
      retain_freed_memory();
    } else {
      return_freed_memory();
    }
    CompressProgressView view(*progress);
    CompressCallbacks callbacks;
    callbacks.on_progress = [&view](const CompressProgress& event) { view(event); };
    callbacks.on_warning = [](const std::string& note) {
      std::fprintf(stderr, "presso: warning: %s\n", note.c_str());
    };
    callbacks.on_serving = [](const std::string& verdict) { std::fputs(verdict.c_str(), stderr); };
    const CompressReport report = compress_model(*options, pass_registry(), callbacks);
    print_summary(report, *options);
  });
}

}  // namespace presso::cli

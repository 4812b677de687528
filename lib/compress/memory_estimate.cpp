#include "lib/compress/memory_estimate.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <utility>

#include "lib/common/errors.h"
#include "lib/common/system_memory.h"
#include "lib/compress/activations.h"
#include "lib/io/safetensors.h"

namespace presso {
namespace {

// What one batch's intermediates cost beyond window_intermediate_bytes() counts them (the
// allocator's slack and the hooks' copies).
constexpr double kBatchSlack = 1.5;
// The checkpoint's pages are released once each tensor is copied out (SafetensorsFile), so the
// file-backed share of RSS stays near this on large checkpoints (docs/benchmarks.md, issue 4).
constexpr double kMappedPagesCap = 128.0 * (1 << 20);

double total(const std::vector<MemoryPart>& parts) {
  double bytes = 0;
  for (const auto& part : parts) bytes += part.bytes;
  return bytes;
}

}  // namespace

double MemoryEstimate::host_bytes() const { return total(host_parts); }
double MemoryEstimate::device_bytes() const { return total(device_parts); }

BlockShape block_shape(const CompressionPlan& job, int block_index, const Model& model) {
  BlockShape shape;
  std::set<std::pair<int64_t, std::string>> inputs;  // (width, module) seen
  const std::string prefix = model.family().block_name(block_index);
  for (const auto& layer : job.plan.layers) {
    const LinearInfo& linear = layer.linear;
    if (linear.name.rfind(prefix, 0) != 0) continue;
    const double out = static_cast<double>(linear.out_features);
    const double in = static_cast<double>(linear.in_features);
    shape.parameters += out * in;
    auto selected = job.selected.find(linear.name);
    if (selected == job.selected.end()) continue;
    bool hessian = false;
    bool vectors = false;  // per-channel sums (AWQ, Wanda)
    for (size_t pass : selected->second->passes) {
      hessian |= job.passes[pass]->wants().hessian;
      vectors |= job.passes[pass]->wants().any();
    }
    if (vectors) shape.statistics_bytes += 4.0 * in;
    if (!hessian) continue;
    shape.statistics_bytes += 4.0 * in * in;
    // Beside its XᵀX, a factorization holds the damped copy or its Cholesky factor, the inverse
    // and the inverse's factor, and the sweep its weight: four in × in matrices, measured (issue
    // 18's 7B bench, down_proj) within a few percent.
    shape.solver_bytes = std::max(shape.solver_bytes, 4.0 * 4.0 * in * in);
    shape.solver_flops += 2.0 * out * in * in + in * in * in;
    shape.hessian_flops += 2.0 * in * in;
  }
  return shape;
}

double file_bytes(const Model& model) { return static_cast<double>(model.tensors().total_bytes()); }

MemoryEstimate estimate_memory(const CompressOptions& options, const CompressionPlan& job,
                               const Model& model) {
  const ModelConfig& config = model.config();
  const bool calibrated = !options.calibration.path.empty();
  const double tokens =
      calibrated ? static_cast<double>(options.nsamples) * static_cast<double>(options.seqlen) : 0;
  const double hidden = static_cast<double>(config.hidden_size);
  const double activation_size = options.bf16_activations ? 2.0 : 4.0;
  bool true_sequential = false;
  double kept_copies = 0;  // hidden-state-sized fp32 copies per token the passes keep
  for (const auto& pass : job.passes) {
    true_sequential |= pass->true_sequential() && pass->wants().any();
    kept_copies = std::max(kept_copies, pass->dry_run_cost().kept_activation_copies);
  }
  BlockShape block;
  for (int index = 0; index < model.num_blocks(); ++index) {
    const BlockShape shape = block_shape(job, index, model);
    block.parameters = std::max(block.parameters, shape.parameters);
    block.statistics_bytes = std::max(block.statistics_bytes, shape.statistics_bytes);
    block.solver_bytes = std::max(block.solver_bytes, shape.solver_bytes);
  }
  MemoryEstimate estimate;
  estimate.batch_size = calibrated ? calibration_batch_size(config, options.nsamples,
                                                            options.seqlen, options.batch_size)
                                   : 0;
  const double source_bytes = file_bytes(model);
  const double source_element = static_cast<double>(st_dtype_size(
      model.tensors().info(model.family().tensor(model.family().embed_tokens)).dtype));
  const double embeddings = static_cast<double>(config.vocab_size) * hidden * 4.0;
  const torch::Device device = model.device();
  const bool read_ahead = overlaps_io(options, device);
  // The hidden states, and the one module input kept for the true-sequential re-collections.
  const double kept_input_size =
      static_cast<double>(c10::elementSize(kept_input_dtype_for(device, !options.fp32_matmul)));
  const double states =
      tokens * (hidden * activation_size + (true_sequential ? hidden * kept_input_size : 0) +
                kept_copies * hidden * 4.0);
  const double batch = calibrated ? kBatchSlack * static_cast<double>(estimate.batch_size) *
                                        window_intermediate_bytes(config, options.seqlen)
                                  : 0;
  std::vector<MemoryPart> compute = {
      {"hidden states and kept module inputs", states},
      {fmt::format("one batch's intermediates ({} windows)", estimate.batch_size), batch},
      {"one block's weights (fp32) and their originals (as stored)",
       block.parameters * (4.0 + source_element)},
      {"one block's statistics", block.statistics_bytes},
      {"the widest linear's factorization and sweep", block.solver_bytes}};

  estimate.host_parts = {{"presso with the checkpoint open (measured now)",
                          static_cast<double>(process_memory_bytes("VmRSS").value_or(0))},
                         {"checkpoint pages read", std::min(source_bytes, kMappedPagesCap)},
                         {"embeddings (fp32, while the windows are embedded)", embeddings},
                         {"token windows", tokens * 8.0}};
  if (device.is_cpu()) {
    estimate.host_parts.insert(estimate.host_parts.end(), compute.begin(), compute.end());
  } else {
    estimate.device_parts = compute;
  }
  if (read_ahead) {  // on the host, whatever the device; a finished block's copy beside it
    estimate.host_parts.push_back(
        {"the next block read ahead and the last one being written", 2.0 * block.parameters * 4.0});
  }
  return estimate;
}

void check_device_fits(const MemoryEstimate& estimate, const std::string& device,
                       const std::optional<DeviceMemory>& memory) {
  if (!memory || estimate.device_bytes() <= static_cast<double>(memory->free_bytes)) return;
  std::string parts;
  for (const auto& part : estimate.device_parts) {
    parts += fmt::format("\n  {:>9}  {}", format_gib(part.bytes), part.what);
  }
  fail_user(
      "the run needs about {} on {}, which has {} free of {}:{}\nhalve the hidden states with "
      "--bf16-activations, lower --nsamples or --seqlen, or set --batch-size 1",
      format_gib(estimate.device_bytes()), device,
      format_gib(static_cast<double>(memory->free_bytes)),
      format_gib(static_cast<double>(memory->total_bytes)), parts);
}

}  // namespace presso

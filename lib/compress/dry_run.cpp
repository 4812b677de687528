#include "lib/compress/dry_run.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "lib/common/system_memory.h"
#include "lib/compress/activations.h"
#include "lib/compress/memory_estimate.h"
#include "lib/export/formats.h"
#include "lib/io/safetensors.h"

namespace presso {
namespace {

// A checkpoint read at this rate, for the time estimate.
constexpr double kReadBytesPerSecond = 1e9;

// fp32 matrix products per second on `device` in the shape of the model's MLP over a batch of
// 2048 tokens, timed over ~0.2 s.
double measure_gemm_flops(const ModelConfig& config, const torch::Device& device) {
  const int64_t rows = 2048, inner = config.hidden_size,
                cols = std::max(config.intermediate_size, config.hidden_size);
  const auto options = torch::TensorOptions().device(device);
  const torch::Tensor a = torch::randn({rows, inner}, options);
  const torch::Tensor b = torch::randn({inner, cols}, options);
  torch::Tensor c = a.mm(b);
  int64_t runs = 0;
  const auto start = std::chrono::steady_clock::now();
  double seconds = 0;
  while (seconds < 0.2) {
    c = a.mm(b);
    c.sum().item<float>();  // waits for a GPU
    ++runs;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return 2.0 * static_cast<double>(rows * inner * cols) * static_cast<double>(runs) / seconds;
}

// Bytes of one linear in the output format: packed codes plus a scale (and a zero point, when
// asymmetric) per group and row, in the format's scale dtype; pruned without codes: half the
// weights and a bitmask where 2:4 is stored compressed, else dense.
double stored_linear_bytes(const LinearPlan& plan, OutputFormat format, double weight_bytes) {
  const double elements = static_cast<double>(plan.out_features * plan.in_features);
  if (plan.scheme) {
    const double groups = static_cast<double>(plan.out_features) *
                          static_cast<double>(group_count(*plan.scheme, plan.in_features));
    const double scale = format == OutputFormat::kDense ? 0 : 2.0 * groups;
    const double zero = plan.scheme->symmetric ? 0 : groups * plan.scheme->bits / 8.0;
    if (format == OutputFormat::kDense) return elements * weight_bytes;
    return elements * plan.scheme->bits / 8.0 + scale + zero +
           (plan.g_idx ? 4.0 * static_cast<double>(plan.in_features) : 0.0);
  }
  if (plan.sparsity && plan.sparsity->n == 2 && plan.sparsity->m == 4 &&
      format_spec(format).sparse_24_compressed) {
    return elements * weight_bytes / 2 + elements / 8;
  }
  return elements * weight_bytes;
}

std::string mib(double bytes) { return fmt::format("{:.0f} MiB", bytes / (1 << 20)); }

}  // namespace

DryRun dry_run_compress(const CompressOptions& options, const PassRegistry& registry) {
  torch::NoGradGuard no_grad;
  PreparedJob prepared = prepare_job(options, registry);
  const Model& model = prepared.model;
  const CompressionPlan& job = prepared.job;
  const ModelConfig& config = model.config();
  const torch::Device device = model.device();
  DryRun run;
  run.serving = prepared.serving;
  run.notes = job.notes;

  // The plan per linear, and the output's size: the linears as stored, everything else as the
  // format writes it.
  const std::optional<torch::ScalarType> model_dtype = format_spec(options.format).model_dtype;
  std::map<std::string, const LinearPlan*> stored;
  for (const auto& plan : job.stored) stored[plan.name] = &plan;
  double linear_source_bytes = 0;
  for (const auto& layer : job.plan.layers) {
    const LinearInfo& linear = layer.linear;
    DryRunLayer row;
    row.name = linear.name;
    row.tied = !model.tensors().contains(linear.name + ".weight");
    row.out_features = linear.out_features;
    row.in_features = linear.in_features;
    for (size_t pass : layer.passes) row.passes.push_back(job.recipe.passes[pass].pass);
    LinearPlan plan;
    plan.out_features = linear.out_features;
    plan.in_features = linear.in_features;
    if (auto it = stored.find(linear.name); it != stored.end()) plan = *it->second;
    row.scheme = plan.scheme;
    row.pruned = plan.sparsity.has_value();
    row.lowrank = plan.lowrank;
    if (!row.tied) {  // a tied lm_head is the embedding, written once as that
      const TensorInfo& info = model.tensors().info(linear.name + ".weight");
      const double weight_bytes = static_cast<double>(model_dtype ? c10::elementSize(*model_dtype)
                                                                  : st_dtype_size(info.dtype));
      linear_source_bytes += static_cast<double>(info.nbytes());
      row.stored_bytes = stored_linear_bytes(plan, options.format, weight_bytes);
    }
    run.output_bytes += row.stored_bytes;
    run.layers.push_back(std::move(row));
  }
  const double others = file_bytes(model) - linear_source_bytes;  // embeddings, norms, biases
  // The other tensors converted as the format says (from the embedding's stored dtype).
  const double source_element = static_cast<double>(st_dtype_size(
      model.tensors().info(model.family().tensor(model.family().embed_tokens)).dtype));
  run.output_bytes +=
      model_dtype ? others * c10::elementSize(*model_dtype) / source_element : others;

  // Memory.
  const MemoryEstimate memory = estimate_memory(options, job, model);
  run.batch_size = memory.batch_size;
  run.host_parts = memory.host_parts;
  run.device_parts = memory.device_parts;
  run.peak_host_bytes = memory.host_bytes();
  run.peak_device_bytes = memory.device_bytes();
  BlockShape block;
  for (int index = 0; index < model.num_blocks(); ++index) {
    const BlockShape shape = block_shape(job, index, model);
    block.parameters = std::max(block.parameters, shape.parameters);
    block.solver_flops += shape.solver_flops;
    block.hessian_flops += shape.hessian_flops;
  }
  const bool calibrated = !options.calibration.path.empty();
  const double tokens =
      calibrated ? static_cast<double>(options.nsamples) * static_cast<double>(options.seqlen) : 0;
  const double hidden = static_cast<double>(config.hidden_size);
  const double source_bytes = file_bytes(model);

  // Time: the block forwards (statistics, re-run, true-sequential re-collections), the XᵀX
  // accumulations and solvers, at the matrix rate measured here; reading and writing the
  // checkpoint at disk speed.
  run.gemm_flops = measure_gemm_flops(config, device);
  double forwards = calibrated ? 2.0 : 0.0;
  // A true-sequential pass re-collects each group's inputs, a part of the block each time.
  for (const auto& pass : job.passes) {
    forwards += (pass->true_sequential() ? 0.5 : 0.0) + pass->dry_run_cost().block_forwards;
  }
  const double attention = 4.0 * static_cast<double>(options.seqlen) * hidden;
  const double flops = tokens * static_cast<double>(model.num_blocks()) * forwards *
                           (2.0 * block.parameters + attention) +
                       tokens * block.hessian_flops + block.solver_flops;
  run.seconds = flops / run.gemm_flops + (source_bytes + run.output_bytes) / kReadBytesPerSecond;
  return run;
}

std::string format_dry_run(const DryRun& run, const CompressOptions& options) {
  std::string out = run.serving;
  for (const auto& note : run.notes) out += "note: " + note + "\n";
  size_t width = 5;
  for (const auto& layer : run.layers) width = std::max(width, layer.name.size());
  out += fmt::format("\n{:<{}}  {:<13}  {:<24}  {:<28}  {:>10}\n", "layer", width, "[out, in]",
                     "passes", "stored", "bytes");
  for (const auto& layer : run.layers) {
    std::string passes;
    for (const auto& pass : layer.passes) passes += (passes.empty() ? "" : ", ") + pass;
    std::string stored = layer.scheme ? scheme_description(*layer.scheme) : "dense";
    if (layer.pruned) stored += ", pruned";
    if (layer.lowrank) stored += ", + low-rank";
    if (layer.tied) stored = "tied to the embeddings";
    out += fmt::format("{:<{}}  {:<13}  {:<24}  {:<28}  {:>10.0f}\n", layer.name, width,
                       fmt::format("[{}, {}]", layer.out_features, layer.in_features),
                       passes.empty() ? "-" : passes, stored, layer.stored_bytes);
  }
  out += fmt::format("\noutput: {} checkpoint of about {:.1f} MiB\n",
                     output_format_name(options.format), run.output_bytes / (1 << 20));
  auto parts = [&out](const char* title, double total, const std::vector<MemoryPart>& list) {
    out += fmt::format("estimated peak {} memory: {:.0f} MiB\n", title, total / (1 << 20));
    for (const auto& part : list) out += fmt::format("  {:>9}  {}\n", mib(part.bytes), part.what);
  };
  parts("host", run.peak_host_bytes, run.host_parts);
  if (!run.device_parts.empty()) parts("GPU", run.peak_device_bytes, run.device_parts);
  if (const auto available = available_memory();
      available && run.peak_host_bytes > static_cast<double>(available->bytes)) {
    out += fmt::format("warning: more than the {} available ({})\n",
                       format_gib(static_cast<double>(available->bytes)), available->source);
  }
  out += fmt::format(
      "estimated time: {:.0f} s (the forwards and solvers at the {:.1f} GFLOP/s fp32 measured "
      "here; within a factor of 2 or so)\n",
      run.seconds, run.gemm_flops / 1e9);
  return out;
}

}  // namespace presso

// Benchmark: evaluation throughput of the forward (tokens/s and achieved GFLOP/s) next to the
// machine's GEMM rate measured in the same run with torch::mm, so the ratio is meaningful.
//   bench_eval [--model DIR] [--data FILE] [--seqlen N] [--windows K] [--batch-size B] [--device D]
#include <algorithm>
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include "lib/common/files.h"
#include "lib/eval/perplexity.h"
#include "lib/eval/runtime.h"
#include "lib/model/model.h"
#include "lib/tokenizer/tokenizer.h"

namespace {

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Best of `repeats` runs of C = A·B with A [m, k], B [k, n], in GFLOP/s.
double gemm_gflops(int64_t m, int64_t k, int64_t n, const torch::Device& device, int repeats) {
  torch::NoGradGuard no_grad;
  const auto a = torch::randn({m, k}, torch::TensorOptions().device(device));
  const auto b = torch::randn({k, n}, torch::TensorOptions().device(device));
  auto c = torch::mm(a, b);  // warm-up
  synchronize(device);
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    synchronize(device);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return 2.0 * static_cast<double>(m * k * n) / best / 1e9;
}

// Multiply-adds per token of one forward over a window of `seqlen`: every linear of every block,
// the lm_head, and attention scores + weighted sum over the full [T, T] matrix (which is what
// the forward computes before masking).
double flops_per_token(const presso::Model& model, int64_t seqlen) {
  const auto& config = model.config();
  const auto block = model.load_block(0);
  double linear_params = 0;
  for (const auto& linear : block.linears) linear_params += static_cast<double>(linear.weight.numel());
  const double attention = 2.0 * 2.0 * static_cast<double>(seqlen * config.num_heads * config.head_dim);
  const double per_block = 2.0 * linear_params + attention;
  const double lm_head = 2.0 * static_cast<double>(config.vocab_size * config.hidden_size);
  return static_cast<double>(config.num_layers) * per_block + lm_head;
}

}  // namespace

int main(int argc, char** argv) {
  presso::configure_runtime();
  presso::retain_freed_memory();
  std::string model_dir = "tests/data/sotu-llama-16m";
  std::string data = "tests/data/eval.txt";
  int64_t seqlen = 512;
  int64_t windows = 32;
  int64_t batch_size = 8;
  std::string device_name = "cpu";
  CLI::App app{"Evaluation throughput vs. the machine's GEMM rate"};
  app.add_option("--model", model_dir)->capture_default_str();
  app.add_option("--data", data)->capture_default_str();
  app.add_option("--seqlen", seqlen)->capture_default_str();
  app.add_option("--windows", windows)->capture_default_str();
  app.add_option("--batch-size", batch_size)->capture_default_str();
  app.add_option("--device", device_name)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const torch::Device device = presso::parse_device(device_name);
  auto model = presso::Model::open(model_dir);
  model.to(device);
  const auto tokens =
      presso::Tokenizer::from_model_dir(model_dir).encode(presso::read_file_bytes(data), false);
  const auto& config = model.config();
  const int64_t rows = batch_size * seqlen;
  // The forward's dominant GEMMs: activations [B*T, hidden] times the MLP up projection, and
  // the lm_head; plus a square reference.
  const double gemm_mlp = gemm_gflops(rows, config.hidden_size, config.intermediate_size, device, 5);
  const double gemm_head = gemm_gflops(rows, config.hidden_size, config.vocab_size, device, 5);
  const double gemm_square = gemm_gflops(2048, 2048, 2048, device, 5);

  presso::PerplexityOptions options;
  options.seqlen = seqlen;
  options.max_windows = windows;
  options.batch_size = batch_size;
  options.device = device;
  presso::compute_perplexity(model, tokens, options);  // warm-up: loads blocks, fills caches
  const auto result = presso::compute_perplexity(model, tokens, options);
  const double gflops = result.tokens_per_second * flops_per_token(model, seqlen) / 1e9;
  const double gemm_best = std::max({gemm_mlp, gemm_head, gemm_square});

  std::printf("device %s  threads %d  %s\n", device.str().c_str(), at::get_num_threads(),
              presso::libtorch_description().c_str());
  std::printf("gemm [%lld x %lld] x [%lld x %lld]: %.1f GFLOP/s\n", static_cast<long long>(rows),
              static_cast<long long>(config.hidden_size), static_cast<long long>(config.hidden_size),
              static_cast<long long>(config.intermediate_size), gemm_mlp);
  std::printf("gemm [%lld x %lld] x [%lld x %lld]: %.1f GFLOP/s\n", static_cast<long long>(rows),
              static_cast<long long>(config.hidden_size), static_cast<long long>(config.hidden_size),
              static_cast<long long>(config.vocab_size), gemm_head);
  std::printf("gemm 2048^3: %.1f GFLOP/s\n", gemm_square);
  std::printf("eval %s: %lld windows x %lld tokens, batch %lld: %.3f s, %.0f tokens/s, %.1f GFLOP/s "
              "= %.0f%% of the best GEMM rate, ppl %.4f\n",
              model_dir.c_str(), static_cast<long long>(result.windows),
              static_cast<long long>(seqlen), static_cast<long long>(batch_size), result.seconds,
              result.tokens_per_second, gflops, 100.0 * gflops / gemm_best, result.ppl);
  return 0;
}

// Benchmark: seconds per layer of GPTQ (lib/quant/gptq.h), by part, next to the floor that the
// machine's fp32 matrix rate, measured in the same run with torch::mm, implies for each part's
// FLOPs:
//   XᵀX accumulation  2·tokens·in²            (one GEMM per chunk of tokens; no symmetry used)
//   factorization      4/3·in³                 (Cholesky n³/3, cholesky_inverse = LAPACK potri
//                                               2n³/3 — trtri n³/3 + lauum n³/3 —, then the
//                                               upper Cholesky n³/3; LAWN 41's flop counts)
//   sweep              out·in² = out·in·(in − B) for the lazy-batch GEMMs + out·in·B for the
//                      rank-1 updates inside the blocks of B columns (rounding is O(out·in));
//                      the GEMMs are also timed alone (lib/quant/gptq_lazy_batch.h: in spans
//                      of blocks on CUDA), and "the rest" is the column loop inside the blocks,
//                      the grids and the bookkeeping
//   bench_gptq [--device D] [--tokens N] [--repeat R] [--shapes 4096x4096,11008x4096]
//              [--bits 4] [--group-size 128] [--block-size 128] [--act-order] [--kernel K]
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/eval/runtime.h"
#include "lib/quant/gptq.h"
#include "lib/quant/gptq_lazy_batch.h"

namespace {

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Best wall time of `repeat` runs of `work`, synchronizing the device around each.
double best_seconds(int repeat, const torch::Device& device, const std::function<void()>& work) {
  double best = 1e30;
  for (int i = 0; i < repeat; ++i) {
    synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    work();
    synchronize(device);
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// The fp32 matrix rate: the best of square torch::mm products of the given sizes.
double gemm_gflops(const std::vector<int64_t>& sizes, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  double best = 0;
  for (int64_t n : sizes) {
    const auto a = torch::randn({n, n}, torch::TensorOptions().device(device));
    const auto b = torch::randn({n, n}, torch::TensorOptions().device(device));
    torch::Tensor c = torch::mm(a, b);  // warm-up
    const double seconds = best_seconds(3, device, [&] { c = torch::mm(a, b); });
    best = std::max(best, 2.0 * static_cast<double>(n * n * n) / seconds / 1e9);
  }
  return best;
}

struct Shape {
  int64_t out, in;
};

std::vector<Shape> parse_shapes(const std::string& text) {
  std::vector<Shape> shapes;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t x = item.find('x');
    if (x == std::string::npos) presso::fail_user("--shapes: '{}' is not OUTxIN", item);
    shapes.push_back({std::stoll(item.substr(0, x)), std::stoll(item.substr(x + 1))});
    start = end + 1;
  }
  return shapes;
}

void report(const char* part, double seconds, double gflop, double rate) {
  const double floor = gflop / rate;
  std::printf("  %-14s %9.4f s   %9.1f GFLOP   floor %8.4f s   %6.1fx floor\n", part, seconds,
              gflop, floor, seconds / floor);
}

}  // namespace

int main(int argc, char** argv) {
  presso::configure_runtime();
  std::string device_name = "cpu";
  int64_t tokens = 65536;  // 128 windows of 512
  int64_t chunk = 2048;
  int repeat = 1;
  std::string shapes_text = "4096x4096,11008x4096";
  int bits = 4;
  int group_size = 128;
  int64_t block_size = 128;
  bool act_order = false;
  std::string kernel = "auto";
  CLI::App app{"GPTQ seconds per layer vs. the machine's matrix rate"};
  app.add_option("--device", device_name)->capture_default_str();
  app.add_option("--tokens", tokens, "calibration tokens accumulated into XᵀX")
      ->capture_default_str();
  app.add_option("--chunk", chunk, "tokens per XᵀX GEMM")->capture_default_str();
  app.add_option("--repeat", repeat, "runs per part; the best is reported")->capture_default_str();
  app.add_option("--shapes", shapes_text, "OUTxIN,...")->capture_default_str();
  app.add_option("--bits", bits)->capture_default_str();
  app.add_option("--group-size", group_size)->capture_default_str();
  app.add_option("--block-size", block_size)->capture_default_str();
  app.add_flag("--act-order", act_order);
  app.add_option("--kernel", kernel, "sweep: auto, fused (CPU) or ops")
      ->check(CLI::IsMember({"auto", "fused", "ops"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    torch::NoGradGuard no_grad;
    const torch::Device device = presso::parse_device(device_name);
    const auto options = torch::TensorOptions().device(device);
    const std::vector<int64_t> sizes =
        device.is_cuda() ? std::vector<int64_t>{4096, 8192} : std::vector<int64_t>{2048, 4096};
    const double rate = gemm_gflops(sizes, device);
    std::printf("device %s  threads %d  %s\n", device.str().c_str(), at::get_num_threads(),
                presso::libtorch_description().c_str());
    std::printf("fp32 matrix rate (best torch::mm of %lld^3 and %lld^3): %.1f GFLOP/s\n",
                static_cast<long long>(sizes[0]), static_cast<long long>(sizes[1]), rate);
    std::printf("gptq w%d g%d block %lld act_order %d kernel %s, %lld tokens in chunks of %lld\n",
                bits, group_size, static_cast<long long>(block_size), act_order ? 1 : 0,
                kernel.c_str(), static_cast<long long>(tokens), static_cast<long long>(chunk));

    presso::GptqOptions gptq;
    gptq.scheme = presso::QuantScheme{bits, group_size, true};
    gptq.block_size = block_size;
    gptq.act_order = act_order;
    gptq.kernel = kernel == "fused" ? presso::GptqSweepKernel::kFusedCpu
                  : kernel == "ops" ? presso::GptqSweepKernel::kTensorOps
                                    : presso::GptqSweepKernel::kAuto;
    for (const Shape& shape : parse_shapes(shapes_text)) {
      const double in = static_cast<double>(shape.in);
      const double out = static_cast<double>(shape.out);
      std::printf("layer %lld x %lld (out x in)\n", static_cast<long long>(shape.out),
                  static_cast<long long>(shape.in));
      // Activations with per-channel scales, as real inputs have; a few distinct chunks are
      // reused so generating them is not timed.
      const torch::Tensor channel_scale = torch::exp(torch::randn({shape.in}, options));
      std::vector<torch::Tensor> chunks;
      for (int i = 0; i < 4; ++i)
        chunks.push_back(torch::randn({chunk, shape.in}, options) * channel_scale);
      torch::Tensor xtx = torch::zeros({shape.in, shape.in}, options);
      xtx.addmm_(chunks[0].t(), chunks[0]);  // warm-up
      const double accumulate = best_seconds(repeat, device, [&] {
        xtx.zero_();
        for (int64_t t = 0, i = 0; t < tokens; t += chunk, ++i) {
          const torch::Tensor& x = chunks[i % chunks.size()];
          xtx.addmm_(x.t(), x);
        }
      });
      const torch::Tensor hessian = xtx * (2.0 / static_cast<double>(tokens));
      presso::GptqHessian prepared;
      const double factor = best_seconds(repeat, device, [&] {
        prepared = presso::prepare_gptq_hessian(hessian, gptq, device, "bench");
      });
      const torch::Tensor weight = torch::randn({shape.out, shape.in}, options) * 0.02;
      presso::GptqResult result;
      const double sweep = best_seconds(repeat, device, [&] {
        result = presso::gptq_sweep(weight, prepared, gptq, std::nullopt, "bench");
      });
      // The sweep's lazy-batch GEMMs alone, on the same shapes and in the same batches: what is
      // left of the sweep is the column loop inside the blocks, the grids and the bookkeeping.
      torch::Tensor scratch = weight.clone();
      presso::gptq_internal::LazyBatchUpdate lazy(scratch, prepared.inverse_factor, block_size,
                                                  group_size > 0 ? group_size : 0,
                                                  device.is_cuda());
      lazy.block_errors(0, std::min(lazy.span(), shape.in))
          .copy_(torch::randn({shape.out, std::min(lazy.span(), shape.in)}, options) * 1e-3);
      const double gemms = best_seconds(repeat, device, [&] {
        for (int64_t i1 = 0; i1 + block_size < shape.in; i1 += block_size) {
          lazy.apply(i1, i1 + block_size);
        }
      });
      const double tokens_d = static_cast<double>(tokens);
      const double b = static_cast<double>(std::min(block_size, shape.in));
      report("XtX", accumulate, 2.0 * tokens_d * in * in / 1e9, rate);
      report("factorization", factor, 4.0 / 3.0 * in * in * in / 1e9, rate);
      report("sweep", sweep, out * in * in / 1e9, rate);
      report(" lazy GEMMs", gemms, out * in * (in - b) / 1e9, rate);
      report(" the rest", sweep - gemms, out * in * b / 1e9, rate);
      std::printf("  loss %.4g, damp %.3g, total %.3f s\n", result.loss, result.damp_used,
                  accumulate + factor + sweep);
    }
  } catch (const presso::Error& e) {
    std::fprintf(stderr, "bench_gptq: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}

// The GPTQ kernel on a CUDA device (every sweep kernel there) against the direct OBS loop of
// lib/quant/reference.h; skipped where LibTorch has no CUDA.
#include "tests/catch_torch.h"

#include <torch/cuda.h>

#include <vector>

#include "lib/quant/gptq.h"
#include "lib/quant/reference.h"
#include "tests/gptq_sweep_cases.h"

using namespace presso;
using namespace presso::test;

TEST_CASE("gptq on a CUDA device matches the direct OBS reference", "[unit]") {
  if (!torch::cuda::is_available()) return;  // the CPU-only build has no device to test
  const torch::Device cuda(torch::kCUDA);
  std::vector<GptqSweepKernel> kernels = {GptqSweepKernel::kTensorOps};
  if (gptq_fused_cuda_available()) kernels.push_back(GptqSweepKernel::kFusedCuda);
  // Full and partly used blocks of the fused kernel's 128 columns; 1280 columns are more than a
  // span of the two-level lazy batches (gptq_lazy_batch.h) except where groups forbid spans.
  const std::vector<int64_t> block_sizes = {64, 48, 128, 97, 32};
  int64_t compared_codes = 0, codes_differ = 0;
  float worst_dequantized = 0;
  int trial = 0;
  for (bool act_order : {false, true}) {
    for (bool static_groups : {false, true}) {
      for (int group_size : {-1, 32}) {
        ++trial;
        GptqOptions options;
        options.scheme =
            QuantScheme{std::vector<int>{4, 3, 8}[trial % 3], group_size, trial % 2 == 0};
        options.block_size = block_sizes[trial % block_sizes.size()];
        options.act_order = act_order;
        options.static_groups = static_groups;
        const Layer layer = random_layer(48, 1280, 9000 + trial, trial % 3 == 0 ? 2 : 0);
        std::optional<torch::Tensor> mask;
        if (trial % 2 == 1) mask = random_mask(48, 1280, 0.3, 9100 + trial);
        INFO(describe(options, mask.has_value(), trial % 3 == 0 ? 2 : 0));
        torch::Tensor ties;
        const GptqResult ref = gptq_quantize_ref(layer.weight, layer.hessian, options, mask, &ties);
        std::optional<torch::Tensor> cuda_mask;
        if (mask) cuda_mask = mask->to(cuda);
        std::vector<GptqResult> results;
        for (GptqSweepKernel kernel : kernels) {
          options.kernel = kernel;
          INFO((kernel == GptqSweepKernel::kFusedCuda ? "fused CUDA sweep" : "tensor-op sweep"));
          const GptqResult on_device =
              gptq_quantize(layer.weight.to(cuda), layer.hessian.to(cuda), options, cuda_mask, "w");
          CHECK(on_device.dequantized.device().is_cuda());
          GptqResult fast = on_device;
          fast.dequantized = on_device.dequantized.cpu();
          fast.weight.q = on_device.weight.q.cpu();
          fast.weight.scale = on_device.weight.scale.cpu();
          fast.weight.zero_point = on_device.weight.zero_point.cpu();
          if (fast.weight.g_idx) fast.weight.g_idx = fast.weight.g_idx->cpu();
          CHECK((dequantize(fast.weight) == fast.dequantized).all().item<bool>());
          const Agreement a = compare(fast, ref, ties, visit_order(layer.hessian, options));
          INFO("rows diverged " << a.rows_diverged << ", worst tie distance at a first difference "
                                << a.worst_first_tie);
          CHECK(a.rows_not_at_tie == 0);
          CHECK(a.worst_dequantized <= 1e-5f * layer.weight.abs().max().item<float>());
          if (a.rows_diverged == 0) CHECK(fast.loss == Approx(ref.loss).epsilon(1e-3));
          if (mask) {
            CHECK(fast.dequantized.masked_select(mask->logical_not()).abs().max().item<float>() ==
                  0);
          }
          results.push_back(fast);
        }
        if (results.size() == 2) {
          // The two CUDA sweeps share the grids and the lazy-batch GEMMs; inside the blocks both
          // round every operation in fp32 without FMA contraction.
          const GptqResult& ops = results[0];
          const GptqResult& fused = results[1];
          const int64_t differ = (ops.weight.q != fused.weight.q).sum().item<int64_t>();
          compared_codes += ops.weight.q.numel();
          codes_differ += differ;
          worst_dequantized = std::max(
              worst_dequantized, (ops.dequantized - fused.dequantized).abs().max().item<float>());
          if (differ == 0) CHECK(fused.loss == Approx(ops.loss).epsilon(1e-5));
        }
      }
    }
  }
  if (kernels.size() == 2) {
    std::cout << "gptq on CUDA, fused kernel vs tensor ops: " << codes_differ << " of "
              << compared_codes << " codes differ; largest |dq| difference " << worst_dequantized
              << "\n";
  }

  // A larger layer in the shape of the benchmark's (block 128, group 128): all three kernels on
  // the same input. The CUDA sweeps share everything but the in-block loop; the CPU one differs
  // from them by the summation order of its GEMMs.
  if (kernels.size() == 2) {
    const Layer large = random_layer(2048, 1024, 9400);
    GptqOptions options;
    options.scheme = QuantScheme{4, 128, true};
    std::vector<GptqResult> by_kernel;
    for (GptqSweepKernel kernel : {GptqSweepKernel::kTensorOps, GptqSweepKernel::kFusedCuda}) {
      options.kernel = kernel;
      by_kernel.push_back(gptq_quantize(large.weight.to(cuda), large.hessian.to(cuda), options));
    }
    options.kernel = GptqSweepKernel::kFusedCpu;
    const GptqResult cpu = gptq_quantize(large.weight, large.hessian, options);
    const int64_t differ = (by_kernel[0].weight.q != by_kernel[1].weight.q).sum().item<int64_t>();
    std::cout << "gptq 2048 x 1024 w4 g128: loss tensor ops (CUDA) " << by_kernel[0].loss
              << ", fused CUDA " << by_kernel[1].loss << ", fused CPU " << cpu.loss << "; "
              << differ << " of " << by_kernel[0].weight.q.numel()
              << " codes differ between the CUDA sweeps\n";
    CHECK(by_kernel[1].loss == Approx(by_kernel[0].loss).epsilon(1e-3));
    CHECK(by_kernel[1].loss == Approx(cpu.loss).epsilon(1e-3));

    // The fused kernel gives a row 4 threads up to 32 rows per SM, else 2: 6000 rows reach the
    // second launch shape on GPUs of up to 180 SMs.
    const Layer tall = random_layer(6000, 256, 9450);
    std::vector<GptqResult> tall_by_kernel;
    for (GptqSweepKernel kernel : {GptqSweepKernel::kTensorOps, GptqSweepKernel::kFusedCuda}) {
      options.kernel = kernel;
      tall_by_kernel.push_back(gptq_quantize(tall.weight.to(cuda), tall.hessian.to(cuda), options));
    }
    const int64_t tall_differ =
        (tall_by_kernel[0].weight.q != tall_by_kernel[1].weight.q).sum().item<int64_t>();
    std::cout << "gptq 6000 x 256 w4 g128: " << tall_differ << " of "
              << tall_by_kernel[0].weight.q.numel() << " codes differ between the CUDA sweeps\n";
    CHECK(tall_differ <= tall_by_kernel[0].weight.q.numel() / 1000);
    CHECK(tall_by_kernel[1].loss == Approx(tall_by_kernel[0].loss).epsilon(1e-4));
  }

  // Blocks wider than the fused kernel takes: kAuto sweeps them with tensor ops, kFusedCuda
  // refuses them.
  const Layer layer = random_layer(16, 512, 9500);
  GptqOptions options;
  options.scheme = QuantScheme{4, 128, true};
  options.block_size = 512;
  const GptqResult wide =
      gptq_quantize(layer.weight.to(cuda), layer.hessian.to(cuda), options, std::nullopt, "w");
  CHECK(wide.dequantized.device().is_cuda());
  if (gptq_fused_cuda_available()) {
    options.kernel = GptqSweepKernel::kFusedCuda;
    CHECK_THROWS_WITH(
        gptq_quantize(layer.weight.to(cuda), layer.hessian.to(cuda), options, std::nullopt, "w"),
        Catch::Contains("at most 128 columns"));
  }
}

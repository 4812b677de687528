// The pruning-mask kernels on a CUDA device against the CPU ones, ties and the global floor
// included; skipped where LibTorch has no CUDA.
#include "tests/catch_torch.h"

#include <torch/cuda.h>

#include <random>
#include <vector>

#include "lib/sparse/reference.h"
#include "lib/sparse/sparse.h"
#include "tests/sparse_mask_cases.h"

using namespace presso;
using namespace presso::test;

TEST_CASE("masks on CUDA equal the CPU masks, ties and the global floor included", "[unit]") {
  if (!torch::cuda::is_available()) return;  // the CPU-only build has no device to test
  const torch::Device cuda(torch::kCUDA);
  std::mt19937 rng(9);
  for (uint64_t seed = 0; seed < 6; ++seed) {
    torch::manual_seed(static_cast<int64_t>(seed));
    const Shape s = random_shape(rng);
    const torch::Tensor weight =
        seed % 2 ? tied_values(s, true) : distinct_values(s, /*signs=*/true);
    for (const double sparsity : kSparsities) {
      for (const MaskScope scope : {MaskScope::kLayer, MaskScope::kRow}) {
        INFO(describe(s, sparsity, scope, {}, seed));
        const torch::Tensor on_device = magnitude_mask(weight.to(cuda), sparsity, scope);
        CHECK(on_device.is_cuda());
        CHECK(torch::equal(on_device.cpu(), magnitude_mask(weight, sparsity, scope)));
      }
    }
    for (const SparsityPattern& pattern : kPatterns) {
      const torch::Tensor on_device =
          magnitude_mask(weight.to(cuda), 0, MaskScope::kLayer, pattern);
      CHECK(torch::equal(on_device.cpu(), magnitude_mask(weight, 0, MaskScope::kLayer, pattern)));
    }
    const std::vector<torch::Tensor> layers = {weight, weight.t().contiguous() * 0.01,
                                               torch::randn({16, 24})};
    std::vector<torch::Tensor> layers_on_device;
    for (const auto& w : layers) layers_on_device.push_back(w.to(cuda));
    for (const double min_keep : {0.0, 0.25}) {
      const auto on_device = global_magnitude_masks(layers_on_device, 0.5, min_keep);
      const auto ref = global_magnitude_masks_ref(layers, 0.5, min_keep);
      for (size_t i = 0; i < layers.size(); ++i) {
        CHECK(on_device[i].is_cuda());
        CHECK(torch::equal(on_device[i].cpu(), ref[i]));
      }
    }
  }
  // one large layer, where kthvalue and bincount take their multi-block paths
  torch::manual_seed(10);
  const torch::Tensor big = torch::randn({2048, 4096});
  CHECK(torch::equal(magnitude_mask(big.to(cuda), 0.5).cpu(), magnitude_mask(big, 0.5)));
  CHECK(torch::equal(global_magnitude_masks({big.to(cuda)}, 0.5, 0.25)[0].cpu(),
                     global_magnitude_masks({big}, 0.5, 0.25)[0]));
}

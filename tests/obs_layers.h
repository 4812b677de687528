// Shared by the OBS-sweep tests (GPTQ, SparseGPT): random layers whose inputs are correlated
// and unevenly scaled, as real activations are, so that the Hessian matters.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>

namespace presso::test {

struct Layer {
  torch::Tensor weight;   // [out, in]
  torch::Tensor hessian;  // [in, in], 2XᵀX/n
};

// Correlated inputs with channel scales spread over e^±2 (so act order matters), `dead` inputs
// always 0, and a weight with a few outliers.
inline Layer random_layer(int64_t out, int64_t in, uint64_t seed, int dead = 0,
                          int64_t samples = 512) {
  torch::manual_seed(static_cast<int64_t>(seed));
  const torch::Tensor mix = torch::eye(in) + 0.4 * torch::randn({in, in}) / std::sqrt(in);
  torch::Tensor x = torch::randn({samples, in}).mm(mix) * torch::exp(torch::randn({in}));
  for (int k = 0; k < dead; ++k) x.select(1, (7 * k + 3) % in).zero_();
  torch::Tensor w = torch::randn({out, in}) * 0.05;
  w += (torch::rand({out, in}) < 0.01).to(torch::kFloat32) * torch::randn({out, in}) * 0.4;
  return {w, 2.0 * x.t().mm(x) / samples};
}

}  // namespace presso::test

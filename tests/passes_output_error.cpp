// The output-error meter of the re-run: whichever way it measures a linear (through XᵀX or two
// GEMMs), it reports ‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ over the first max_tokens tokens it saw.
#include "tests/catch_torch.h"

#include "lib/compress/output_error.h"

using namespace presso;

namespace {

double direct_error(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& w_hat) {
  const auto x64 = x.reshape({-1, x.size(-1)}).to(torch::kFloat64);
  const auto ref = torch::mm(x64, w.to(torch::kFloat64).t());
  const auto err = ref - torch::mm(x64, w_hat.to(torch::kFloat64).t());
  return std::sqrt(err.square().sum().item<double>() / ref.square().sum().item<double>());
}

}  // namespace

TEST_CASE("the output error meter equals the direct error for shared and single inputs", "[unit]") {
  torch::manual_seed(0);
  // q/k/v read one input (k and v narrower than it), down a wider one than its output.
  const auto w_q = torch::randn({64, 48}), w_k = torch::randn({16, 48});
  const auto w_down = torch::randn({24, 96});
  auto perturbed = [](const torch::Tensor& w) { return w + 0.05 * torch::randn_like(w); };
  const auto q_hat = perturbed(w_q), k_hat = perturbed(w_k), down_hat = perturbed(w_down);
  // With 1500 tokens, q and k are measured through XᵀX, down_proj through two GEMMs.
  OutputErrorMeter meter(/*tokens=*/1920, /*max_tokens=*/1500);
  meter.track("q", w_q, q_hat);
  meter.track("k", w_k, k_hat);
  meter.track("down", w_down, down_hat);
  std::vector<torch::Tensor> shared, wide;
  for (int batch = 0; batch < 3; ++batch) {  // 3 × 640 tokens, of which the first 1500 count
    shared.push_back(torch::randn({2, 320, 48}));
    wide.push_back(torch::randn({2, 320, 96}));
    meter.hook("q", shared.back());
    meter.hook("k", shared.back());
    meter.hook("untracked", shared.back());
    meter.hook("down", wide.back());
  }
  auto first_tokens = [](const std::vector<torch::Tensor>& inputs) {
    return torch::cat(inputs).reshape({-1, inputs[0].size(-1)}).slice(0, 0, 1500);
  };
  CHECK(meter.relative_error("q") == Approx(direct_error(first_tokens(shared), w_q, q_hat)));
  CHECK(meter.relative_error("k") == Approx(direct_error(first_tokens(shared), w_k, k_hat)));
  CHECK(meter.relative_error("down") ==
        Approx(direct_error(first_tokens(wide), w_down, down_hat)));
  CHECK(meter.tracks("q"));
  CHECK_FALSE(meter.tracks("untracked"));
}

TEST_CASE("the output error meter reports 0 for an unchanged linear", "[unit]") {
  const auto w = torch::randn({8, 8});
  OutputErrorMeter meter(4);
  meter.track("same", w, w.clone());
  meter.hook("same", torch::randn({4, 8}));
  CHECK(meter.relative_error("same") == 0.0);
}

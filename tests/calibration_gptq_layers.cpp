// GPTQ (lib/quant/gptq.h) on real layers: block 0 of the shipped sotu-llama-16m, calibrated on the
// shipped text through the statistics the driver gathers. It lives with the calibration tests
// because it needs the model and the statistics collector; the kernel alone is tested in
// tests/quant_gptq.cpp.
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "calibration/calibration_data.h"
#include "calibration/linear_statistics.h"
#include "calibration/windows.h"
#include "lib/model/model.h"
#include "lib/quant/gptq.h"
#include "lib/quant/quant.h"
#include "lib/quant/reference.h"
#include "lib/tokenizer/tokenizer.h"
#include "tests/catch_torch.h"
#include "tests/fixtures.h"

using namespace presso;

namespace {

struct CalibratedBlock {
  DecoderBlock block;
  std::map<std::string, torch::Tensor> hessians;  // full linear name -> 2XᵀX/n
};

CalibratedBlock calibrate_block0(const std::vector<std::string>& linears) {
  const std::string dir = (test::test_data() / "sotu-llama-16m").string();
  const Model model = Model::open(dir);
  const Tokenizer tokenizer = Tokenizer::from_model_dir(dir);
  CalibrationSource source;
  source.path = (test::test_data() / "calib.txt").string();
  const std::vector<int32_t> tokens = load_calibration_tokens(source, tokenizer);
  const torch::Tensor windows = sample_windows(tokens, 32, 256, 0);
  CalibratedBlock result{model.load_block(0), {}};
  StatisticsCollector collector;
  for (const auto& name : linears) {
    collector.request(result.block.prefix + name, StatsRequest{true, false, false});
  }
  const LinearHook hook = collector.as_hook();
  torch::NoGradGuard no_grad;
  model.run_block(result.block, model.embed(windows), &hook);
  for (const auto& name : linears) {
    result.hessians[name] = collector.at(result.block.prefix + name).hessian();
  }
  return result;
}

}  // namespace

TEST_CASE("gptq beats rtn in the layer objective on q_proj and down_proj of a real block",
          "[unit]") {
  const std::vector<std::string> linears = {"self_attn.q_proj", "mlp.down_proj"};
  const CalibratedBlock calibrated = calibrate_block0(linears);
  struct Config {
    QuantScheme scheme;
    bool act_order;
    bool static_groups;
  };
  const std::vector<Config> configs = {
      {{4, 128, true}, false, false}, {{4, 128, false}, true, false},
      {{4, 128, true}, true, true},   {{3, 128, false}, true, false},
      {{4, -1, true}, true, false},   {{8, -1, true}, false, false}};
  for (const auto& name : linears) {
    const torch::Tensor& weight = calibrated.block.linear(name).weight;
    const torch::Tensor& hessian = calibrated.hessians.at(name);
    for (const Config& config : configs) {
      GptqOptions options;
      options.scheme = config.scheme;
      options.act_order = config.act_order;
      options.static_groups = config.static_groups;
      const GptqResult gptq =
          gptq_quantize(weight, hessian, options, std::nullopt, calibrated.block.prefix + name);
      const torch::Tensor rtn = dequantize(quantize_rtn(weight, config.scheme));
      const double gptq_objective = layer_objective(weight, gptq.dequantized, hessian);
      const double rtn_objective = layer_objective(weight, rtn, hessian);
      INFO(name << " w" << config.scheme.bits << " g" << config.scheme.group_size
                << (config.scheme.symmetric ? " sym" : " asym") << " act_order " << config.act_order
                << " static_groups " << config.static_groups << ": gptq " << gptq_objective
                << " rtn " << rtn_objective);
      CHECK(gptq.retries == 0);
      CHECK(gptq_objective < 0.9 * rtn_objective);
      std::cout << name << " w" << config.scheme.bits << "g" << config.scheme.group_size
                << (config.scheme.symmetric ? " sym" : " asym")
                << (config.act_order ? " act_order" : "")
                << (config.static_groups ? " static_groups" : "")
                << ": gptq / rtn objective = " << gptq_objective / rtn_objective << "\n";
    }
  }
}

TEST_CASE("gptq on a real layer matches the direct OBS reference", "[unit]") {
  const CalibratedBlock calibrated = calibrate_block0({"self_attn.q_proj"});
  const torch::Tensor& weight = calibrated.block.linear("self_attn.q_proj").weight;
  const torch::Tensor& hessian = calibrated.hessians.at("self_attn.q_proj");
  GptqOptions options;
  options.scheme = QuantScheme{4, 64, false};
  options.act_order = true;
  options.block_size = 128;
  const GptqResult fast = gptq_quantize(weight, hessian, options);
  torch::Tensor ties;
  const GptqResult ref = gptq_quantize_ref(weight, hessian, options, std::nullopt, &ties);
  const torch::Tensor differ = fast.weight.q != ref.weight.q;
  const int64_t differing = differ.sum().item<int64_t>();
  std::cout << "q_proj w4g64 act_order: " << differing << " of " << differ.numel()
            << " codes differ from the reference\n";
  // Real Hessians are far worse conditioned than the random ones; summation order may flip a
  // code at a tie, after which its row goes its own way. Allow a handful of such rows.
  CHECK(differ.any(1).sum().item<int64_t>() <= 4);
  CHECK(fast.loss == Approx(ref.loss).epsilon(1e-2));
  REQUIRE(fast.weight.g_idx.has_value());
  REQUIRE(ref.weight.g_idx.has_value());
  CHECK(torch::equal(*fast.weight.g_idx, *ref.weight.g_idx));
}

// The pass interface proven by a pass written here (not registered): its own observer, a module
// run, a scale folded into a norm exactly, an original-weight read, and a low-rank pair that the
// block re-run includes and the writer stores as a PEFT adapter.
#include <filesystem>

#include "lib/common/files.h"
#include "lib/io/safetensors.h"
#include "lib/model/model.h"
#include "lib/recipe/option_groups.h"
#include "tests/catch_torch.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

namespace fs = std::filesystem;
using namespace presso;
using presso::test::TempDir;

namespace {

const std::string kModel = (presso::test::test_data() / "sotu-llama-16m").string();
const std::string kCalib = (presso::test::test_data() / "calib.txt").string();

// An observer of its own: the largest |x| per input channel.
class AbsMaxObserver : public InputObserver {
 public:
  void observe(const torch::Tensor& input) override {
    const torch::Tensor m = input.reshape({-1, input.size(-1)}).abs().amax(0);
    max_ = max_.defined() ? torch::maximum(max_, m) : m;
  }
  torch::Tensor max_;
};

// Keeps every batch's input.
class InputCapture : public InputObserver {
 public:
  void observe(const torch::Tensor& input) override { batches.push_back(input.clone()); }
  std::vector<torch::Tensor> batches;
};

struct Findings {
  int blocks = 0;
  double observer_vs_statistics = 1.0;  // largest excess of max² over Σx², per channel
  double modules_vs_block = 1.0;        // max |block − (x + attention + mlp)|
  double fold_output_change = 1.0;      // max |block after fold − before|
  double fold_hessian_change = 1.0;     // gathered H transformed vs gathered afresh
  double original_vs_weight = 1.0;      // original_weight before any change vs the block's
  double fold_original = 1.0;           // original_weight after the fold vs checkpoint · s
  std::map<int, torch::Tensor> q_xtx;   // per block: XᵀX of q_proj's inputs
};

// Block 0: checks every ability, then gives mlp.down_proj the low-rank path B·A = −W (or, with
// `zero_instead`, zeroes its weight): the next block's inputs must be the same either way.
class InterfacePass : public Pass {
 public:
  InterfacePass(Findings* found, bool zero_instead) : found_(found), zero_instead_(zero_instead) {}
  StatsRequest wants() const override { return {true, false, false}; }

  void run(PassContext& context) override {
    DecoderBlock& block = context.block();
    const std::string p = block.prefix;
    found_->q_xtx[block.index] = context.statistics(p + "self_attn.q_proj").xtx().clone();
    ++found_->blocks;
    if (block.index != 0) return;

    // Its own observers, on a run of the whole block.
    AbsMaxObserver absmax;
    InputCapture q_in, gate_in;
    context.observe({{p + "mlp.up_proj", &absmax},
                     {p + "self_attn.q_proj", &q_in},
                     {p + "mlp.gate_proj", &gate_in}});
    // Σx² (XᵀX's diagonal, the ready observer) bounds max² per channel from above.
    const torch::Tensor diag = context.statistics(p + "mlp.up_proj").xtx().diagonal();
    found_->observer_vs_statistics =
        (absmax.max_.square() - diag).clamp_min(0).max().item<double>();

    // Modules: the block is x + attention(norm x) + mlp(norm x').
    const torch::Tensor x = context.calibration_batch(0);
    const torch::Tensor attention = context.run_module("self_attn", q_in.batches[0]);
    const torch::Tensor mlp = context.run_module("mlp", gate_in.batches[0]);
    const torch::Tensor whole = context.run_module("", x);
    found_->modules_vs_block = (whole - (x + attention + mlp)).abs().max().item<double>();

    // Original weights, before anything changed.
    const std::string gate = p + "mlp.gate_proj";
    found_->original_vs_weight =
        (context.original_weight(gate) - context.state(gate).linear->weight)
            .abs()
            .max()
            .item<double>();

    // A scale folded into the post-attention norm: the block computes the same function.
    torch::manual_seed(1);
    const torch::Tensor s = torch::rand({block.linear("mlp.gate_proj").weight.size(1)}) + 0.5;
    const torch::Tensor h_before = context.statistics(p + "mlp.up_proj").xtx().clone();
    context.fold_scale("post_attention_layernorm", {"mlp.gate_proj", "mlp.up_proj"}, s);
    found_->fold_output_change = (context.run_module("", x) - whole).abs().max().item<double>();
    const torch::Tensor expected_h = h_before / s.unsqueeze(0) / s.unsqueeze(1);
    context.recollect({p + "mlp.up_proj"}, {true, false, false});
    found_->fold_hessian_change =
        ((context.statistics(p + "mlp.up_proj").xtx() - expected_h).abs().max() /
         expected_h.abs().max())
            .item<double>();
    found_->fold_original = (context.original_weight(gate) - context.state(gate).linear->weight)
                                .abs()
                                .max()
                                .item<double>();

    // The low-rank path cancels down_proj exactly (rank = its input width).
    LinearState& down = context.state(p + "mlp.down_proj");
    const torch::Tensor w = down.linear->weight.clone();
    if (zero_instead_) {
      down.linear->weight.zero_();
    } else {
      set_lowrank(down, LowRankPair{torch::eye(w.size(1)), -w});
    }
  }

 private:
  Findings* found_;
  bool zero_instead_;
};

PassRegistry registry_with(Findings* found, bool zero_instead) {
  return presso::test::registry_with_test_pass("interface", [found, zero_instead] {
    return std::unique_ptr<Pass>(std::make_unique<InterfacePass>(found, zero_instead));
  });
}

}  // namespace

TEST_CASE("a pass can observe, run modules, fold scales, read originals and add low-rank paths",
          "[unit]") {
  TempDir dir("interface");
  const std::string recipe = presso::test::write_recipe(
      dir, "r", "interface", "targets: [\"re:.*layers\\\\.[01]\\\\..*\"]");
  Findings lowrank, zeroed;
  const nlohmann::json report =
      compress_model(presso::test::compress_options(kModel, recipe, kCalib, dir.file("lr"), 4, 64),
                     registry_with(&lowrank, false))
          .to_json();
  compress_model(presso::test::compress_options(kModel, recipe, kCalib, dir.file("zero"), 4, 64),
                 registry_with(&zeroed, true));

  CHECK(lowrank.blocks == 2);
  CHECK(lowrank.observer_vs_statistics < 1e-3);
  CHECK(lowrank.modules_vs_block < 1e-4);
  CHECK(lowrank.original_vs_weight == 0.0);
  CHECK(lowrank.fold_output_change < 1e-4);
  CHECK(lowrank.fold_hessian_change < 1e-4);
  CHECK(lowrank.fold_original < 1e-6);

  // The re-run included the low-rank path: block 1 saw the inputs of a zeroed down_proj.
  const torch::Tensor a = lowrank.q_xtx.at(1), b = zeroed.q_xtx.at(1);
  CHECK(((a - b).abs().max() / b.abs().max()).item<double>() < 1e-4);
  CHECK_FALSE(torch::allclose(a, lowrank.q_xtx.at(0)));

  // The report and the adapter carry it; down_proj's output error is the whole output.
  for (const auto& layer : report["layers"]) {
    if (layer["name"] != "model.layers.0.mlp.down_proj") continue;
    CHECK(layer["lowrank_rank"] == 1024);
    CHECK(layer["relative_output_error"].get<double>() == Approx(1.0).epsilon(1e-4));
  }
  const fs::path adapter = fs::path(dir.file("lr")) / "adapter";
  const auto config =
      nlohmann::json::parse(read_file_bytes((adapter / "adapter_config.json").string()));
  CHECK(config["peft_type"] == "LORA");
  CHECK(config["r"] == 1024);
  CHECK(config["lora_alpha"] == 1024);
  CHECK(config["target_modules"] == nlohmann::json::array({"down_proj"}));
  SafetensorsFile tensors((adapter / "adapter_model.safetensors").string());
  const std::string base = "base_model.model.model.layers.0.mlp.down_proj.";
  CHECK(tensors.info(base + "lora_A.weight").shape == std::vector<int64_t>{1024, 1024});
  CHECK(tensors.info(base + "lora_B.weight").shape == std::vector<int64_t>{384, 1024});
  CHECK_FALSE(fs::exists(fs::path(dir.file("zero")) / "adapter"));

  // The folded norm is written as changed.
  Model out = Model::open(dir.file("lr"));
  Model source = Model::open(kModel);
  const DecoderBlock written = out.load_block(0), original = source.load_block(0);
  CHECK_FALSE(torch::equal(written.norm("post_attention_layernorm").weight,
                           original.norm("post_attention_layernorm").weight));
}

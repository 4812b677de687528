// Re-collection inside a module: after a run reached the mlp's input, statistics of down_proj
// alone start from that cached input — and must equal those of a run of the whole block, also
// after a linear inside the mlp changed, and must not after one before it changed.
#include "tests/catch_torch.h"

#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

using namespace presso;
using presso::test::TempDir;

namespace {

const std::string kModel = (presso::test::test_data() / "sotu-llama-16m").string();
const std::string kCalib = (presso::test::test_data() / "calib.txt").string();

class InputGram : public InputObserver {
 public:
  void observe(const torch::Tensor& input) override {
    const torch::Tensor x = input.reshape({-1, input.size(-1)});
    xtx = xtx.defined() ? xtx + x.t().mm(x) : x.t().mm(x);
  }
  torch::Tensor xtx;
};

struct Findings {
  bool ran = false;
  bool after_inner_change = false;  // down_proj's XᵀX re-collected equals a whole-block run's
  bool after_outer_change = false;  // the same after o_proj changed
  bool outer_change_seen = false;   // and differs from before that change
};

class RecollectPass : public Pass {
 public:
  explicit RecollectPass(Findings* found) : found_(found) {}
  StatsRequest wants() const override { return {true, false, false}; }

  void run(PassContext& context) override {
    DecoderBlock& block = context.block();
    if (block.index != 0) return;
    found_->ran = true;
    const std::string p = block.prefix;
    const StatsRequest hessian{true, false, false};
    context.recollect({p + "mlp.gate_proj", p + "mlp.up_proj"}, hessian);  // caches the mlp input
    auto whole_block = [&] {  // XᵀX of down_proj's inputs from runs of the whole block
      InputGram gram;
      const ObserverMap observers{{p + "mlp.down_proj", &gram}};
      for (int64_t i = 0; i < context.calibration_batches(); ++i) {
        context.run_module("", context.calibration_batch(i), observers);
      }
      return gram.xtx;
    };
    block.linear("mlp.up_proj").weight.mul_(0.5);
    context.recollect({p + "mlp.down_proj"}, hessian);
    const torch::Tensor before = context.statistics(p + "mlp.down_proj").xtx().clone();
    found_->after_inner_change = torch::allclose(before, whole_block(), 1e-5, 1e-3);

    block.linear("self_attn.o_proj").weight.mul_(2.0);
    context.recollect({p + "mlp.down_proj"}, hessian);
    const torch::Tensor after = context.statistics(p + "mlp.down_proj").xtx();
    found_->after_outer_change = torch::allclose(after, whole_block(), 1e-5, 1e-3);
    found_->outer_change_seen = !torch::allclose(after, before, 1e-3, 1e-2);
  }

 private:
  Findings* found_;
};

}  // namespace

TEST_CASE("a re-collection inside a module equals a whole-block run, before and after changes",
          "[unit]") {
  TempDir dir("recollect");
  const std::string recipe = presso::test::write_recipe(
      dir, "r", "recollect", "targets: [\"re:.*layers\\\\.0\\\\.mlp\\\\..*\"]");
  Findings found;
  const PassRegistry registry = presso::test::registry_with_test_pass(
      "recollect", [&found] { return std::unique_ptr<Pass>(std::make_unique<RecollectPass>(&found)); });
  compress_model(presso::test::compress_options(kModel, recipe, kCalib, dir.file("out"), 4, 64),
                 registry);
  CHECK(found.ran);
  CHECK(found.after_inner_change);
  CHECK(found.after_outer_change);
  CHECK(found.outer_change_seen);
}

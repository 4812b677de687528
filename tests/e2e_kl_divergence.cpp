// presso's KL divergence against what it claims to be: 0 for a model against itself, the same
// from a saved log-prob file as with both models resident, and on the shipped model's RTN w4 g128
// output equal to the top-k + rest KL computed directly from both models' full logits, and
// within the measured share of the full-vocabulary KL.
#include <cstdio>
#include <vector>

#include "lib/eval/eval_job.h"
#include "lib/model/model.h"
#include "lib/tokenizer/tokenizer.h"
#include "tests/catch_torch.h"
#include "tests/compress_helpers.h"
#include "tests/fixtures.h"

using namespace presso;

namespace {

const std::string kModel = (presso::test::test_data() / "sotu-llama-16m").string();
const std::string kEval = (presso::test::test_data() / "eval.txt").string();
constexpr int64_t kSeqlen = 128;
constexpr int64_t kWindows = 16;  // the project gate's protocol

EvalOptions kl_eval(const std::string& model) {
  return presso::test::eval_options(model, kEval, kWindows, kSeqlen);
}

struct DirectKl {
  double full = 0;      // mean over positions of the full-vocabulary KL(P_reference ‖ Q_model)
  double bucketed = 0;  // the same over P's top-k tokens plus one bucket for the rest
};

// Both straight from the two models' full logits in fp64, independently of lib/eval.
DirectKl direct_kl(const std::string& reference_dir, const std::string& model_dir, int64_t k) {
  torch::NoGradGuard no_grad;
  const Model reference = Model::open(reference_dir);
  const Model model = Model::open(model_dir);
  const auto tokens = Tokenizer::from_model_dir(reference_dir)
                          .encode(read_file_bytes(kEval), /*add_special_tokens=*/false);
  const auto ids =
      torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.begin() + kWindows * kSeqlen))
          .view({kWindows, kSeqlen});
  DirectKl sums;
  for (int64_t first = 0; first < kWindows; first += 4) {
    const auto batch = ids.narrow(0, first, 4);
    const auto lp =
        reference.forward(batch).narrow(1, 0, kSeqlen - 1).to(torch::kFloat64).log_softmax(-1);
    const auto lq =
        model.forward(batch).narrow(1, 0, kSeqlen - 1).to(torch::kFloat64).log_softmax(-1);
    sums.full += (lp.exp() * (lp - lq)).sum().item<double>();
    const auto top = std::get<1>(lp.topk(k, -1));
    const auto p_top = lp.gather(-1, top), q_top = lq.gather(-1, top);
    const auto p_rest = 1 - p_top.exp().sum(-1), q_rest = 1 - q_top.exp().sum(-1);
    sums.bucketed +=
        ((p_top.exp() * (p_top - q_top)).sum(-1) + p_rest * (p_rest.log() - q_rest.log()))
            .sum()
            .item<double>();
  }
  const double positions = static_cast<double>(kWindows * (kSeqlen - 1));
  return {sums.full / positions, sums.bucketed / positions};
}

}  // namespace

TEST_CASE("KL of the shipped model against itself is 0 resident or from a saved file", "[e2e]") {
  presso::test::TempDir dir("kl_self");
  EvalOptions resident = kl_eval(kModel);
  resident.reference_dir = kModel;
  resident.save_logprobs_path = dir.file("self.logprobs");
  const auto report = run_eval(resident);
  CHECK(report["mean_kl"].get<double>() == 0.0);
  CHECK(report["max_kl"].get<double>() == 0.0);
  CHECK(report["top1_agreement"].get<double>() == 1.0);
  CHECK(report["ln_ppl_ratio"].get<double>() == 0.0);
  EvalOptions saved = kl_eval(kModel);
  saved.logprobs_path = dir.file("self.logprobs");
  CHECK(run_eval(saved)["mean_kl"].get<double>() == 0.0);
}

TEST_CASE("mean KL of RTN w4 g128 on the shipped model agrees with the full-vocabulary KL",
          "[e2e]") {
  presso::test::TempDir dir("kl_rtn");
  const std::string out = dir.file("rtn");
  const std::string recipe =
      (presso::test::test_data() / ".." / ".." / "configs" / "rtn-w4g128.yaml").string();
  compress_model(presso::test::compress_options(kModel, recipe, "", out, 0, 0), pass_registry());

  const DirectKl direct = direct_kl(kModel, out, kDefaultKlTopK);
  // presso's KL at several k, both models resident.
  std::vector<std::pair<int64_t, double>> by_k;
  for (int64_t k : {8, 32, 128}) {
    EvalOptions options = kl_eval(out);
    options.reference_dir = kModel;
    options.top_k = k;
    by_k.emplace_back(k, run_eval(options)["mean_kl"].get<double>());
  }
  std::printf("direct: full-vocabulary mean KL %.6f, top-%lld + rest %.6f; presso:", direct.full,
              static_cast<long long>(kDefaultKlTopK), direct.bucketed);
  for (const auto& [k, kl] : by_k)
    std::printf(" top-%lld + rest %.6f (%.1f%% of the full KL);", static_cast<long long>(k), kl,
                100.0 * kl / direct.full);
  std::printf("\n");
  // What presso defines (top-k + rest) it computes exactly: the direct fp64 computation differs
  // only by fp32 logits and fp32 stored log-probs.
  const double kl32 = by_k[1].second;
  CHECK(kl32 == Approx(direct.bucketed).epsilon(1e-4));
  // Merging tokens into one bucket never increases KL (log-sum inequality), and more tokens
  // kept close the gap.
  CHECK(by_k[0].second < by_k[1].second);
  CHECK(by_k[1].second < by_k[2].second);
  CHECK(by_k[2].second <= direct.full * (1 + 1e-6));
  // On this small, flat model (ppl ≈ 50, much mass in the tail) top-32 + rest was measured at 70 %
  // of the full-vocabulary KL (top-8: 52 %, top-128: 82 %); 60 % leaves room for other BLAS
  // builds while a wrong formula (a dropped bucket, the divergence taken the other way) fails.
  CHECK(kl32 >= 0.6 * direct.full);

  // The same through a saved log-prob file of the original, to 1e-4.
  presso::test::TempDir files("kl_saved");
  EvalOptions save = kl_eval(kModel);
  save.save_logprobs_path = files.file("original.logprobs");
  run_eval(save);
  EvalOptions from_file = kl_eval(out);
  from_file.logprobs_path = save.save_logprobs_path;
  const auto report = run_eval(from_file);
  CHECK(report["mean_kl"].get<double>() == Approx(kl32).margin(1e-4));
  CHECK(report["kl_reference"]["top_k"] == kDefaultKlTopK);
}

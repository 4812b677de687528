#include "lib/eval/eval_report.h"

#include <fmt/format.h>

namespace presso {

void add_kl_summary(nlohmann::json& report, const KlSummary& s) {
  report["mean_kl"] = s.mean_kl;
  report["mean_kl_uncertainty"] = s.mean_kl_uncertainty;
  report["median_kl"] = s.median_kl;
  report["p90_kl"] = s.p90_kl;
  report["p95_kl"] = s.p95_kl;
  report["p99_kl"] = s.p99_kl;
  report["max_kl"] = s.max_kl;
  report["top1_agreement"] = s.top1_agreement;
  report["top1_agreement_uncertainty"] = s.top1_agreement_uncertainty;
  report["ln_ppl_ratio"] = s.ln_ppl_ratio;
  report["ln_ppl_ratio_uncertainty"] = s.ln_ppl_ratio_uncertainty;
  report["kl_positions"] = s.positions;
}

std::string eval_summary_text(const nlohmann::json& r) {
  std::string text =
      fmt::format("ppl {:.4f}  ({} windows x {} tokens, {:.0f} tokens/s)\n",
                  r.at("ppl").get<double>(), r.at("windows").get<int64_t>(),
                  r.at("seqlen").get<int64_t>(), r.at("tokens_per_second").get<double>());
  if (!r.contains("mean_kl")) return text;
  const auto& ref = r.at("kl_reference");
  const auto value = [&](const char* key) { return r.at(key).get<double>(); };
  text += fmt::format("KL divergence from {} ({}; top {} + rest, {} positions)\n",
                      ref.at("path").get<std::string>(), ref.at("source").get<std::string>(),
                      ref.at("top_k").get<int64_t>(), r.at("kl_positions").get<int64_t>());
  text += fmt::format("  mean KL          {:10.6f} ± {:.6f}\n", value("mean_kl"),
                      value("mean_kl_uncertainty"));
  text += fmt::format("  median KL        {:10.6f}\n", value("median_kl"));
  text += fmt::format("  90% / 95% / 99%  {:10.6f} / {:.6f} / {:.6f}\n", value("p90_kl"),
                      value("p95_kl"), value("p99_kl"));
  text += fmt::format("  max KL           {:10.6f}\n", value("max_kl"));
  text += fmt::format("  top-1 agreement  {:9.3f}% ± {:.3f}%\n", 100.0 * value("top1_agreement"),
                      100.0 * value("top1_agreement_uncertainty"));
  text += fmt::format("  ln(ppl ratio)    {:10.6f} ± {:.6f}\n", value("ln_ppl_ratio"),
                      value("ln_ppl_ratio_uncertainty"));
  return text;
}

}  // namespace presso

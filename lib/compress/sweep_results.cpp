#include "lib/compress/sweep_results.h"

#include <fmt/format.h>

#include <cmath>

#include "lib/common/files.h"
#include "lib/common/svg_chart.h"

namespace presso {

namespace {

// A number for CSV and JSON: empty / null when not measured.
std::string csv_number(double value) {
  return std::isfinite(value) ? fmt::format("{:.6g}", value) : "";
}
nlohmann::json json_number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

// RFC 4180: quote a field holding a comma, quote or line break, doubling its quotes.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

nlohmann::json row_json(const SweepRow& row) {
  nlohmann::json out = {{"name", row.name},
                        {"recipe", row.recipe},
                        {"status", row.status},
                        {"bits_per_weight", json_number(row.bits_per_weight)},
                        {"size_bytes", row.size_bytes},
                        {"ppl", json_number(row.ppl)},
                        {"mean_kl", json_number(row.mean_kl)},
                        {"top1_agreement", json_number(row.top1_agreement)},
                        {"seconds", row.seconds}};
  if (!row.error.empty()) out["error"] = row.error;
  return out;
}

}  // namespace

std::string sweep_results_csv(const SweepResult& result) {
  std::string csv =
      "name,recipe,status,bits_per_weight,size_bytes,ppl,mean_kl,top1_agreement,"
      "seconds,error\n";
  auto add = [&csv](const SweepRow& row) {
    csv += fmt::format("{},{},{},{},{},{},{},{},{:.1f},{}\n", csv_field(row.name),
                       csv_field(row.recipe), row.status, csv_number(row.bits_per_weight),
                       row.size_bytes, csv_number(row.ppl), csv_number(row.mean_kl),
                       csv_number(row.top1_agreement), row.seconds, csv_field(row.error));
  };
  add(result.original);
  for (const auto& row : result.rows) add(row);
  return csv;
}

nlohmann::json sweep_results_json(const SweepResult& result) {
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& row : result.rows) runs.push_back(row_json(row));
  return {{"original", row_json(result.original)}, {"runs", runs}, {"failed", result.failed()}};
}

std::string sweep_plot_svg(const SweepResult& result, const std::string& model_name) {
  ScatterPanel ppl{
      "Perplexity (lower is better)",
      "bits per weight (size on disk)",
      "perplexity",
      {},
      ReferenceLine{result.original.ppl,
                    fmt::format("original: ppl {:.3f} at {:.1f} bits", result.original.ppl,
                                result.original.bits_per_weight)}};
  ScatterPanel kl{"KL divergence from the original (nats)",
                  "bits per weight (size on disk)",
                  "mean KL",
                  {},
                  ReferenceLine{0.0, "original: 0"}};
  for (const auto& row : result.rows) {
    if (row.status == "failed") continue;
    ppl.points.push_back({row.bits_per_weight, row.ppl, row.name});
    kl.points.push_back({row.bits_per_weight, row.mean_kl, row.name});
  }
  return scatter_chart_svg("presso sweep: " + model_name, {ppl, kl});
}

void write_sweep_results(const SweepResult& result, const std::string& model_name,
                         const std::string& dir) {
  write_file_atomically(dir + "/results.csv", sweep_results_csv(result));
  write_file_atomically(dir + "/results.json", sweep_results_json(result).dump(2) + "\n");
  write_file_atomically(dir + "/plot.svg", sweep_plot_svg(result, model_name));
}

}  // namespace presso

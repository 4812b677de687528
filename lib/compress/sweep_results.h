// The files a sweep leaves: results.csv, results.json and plot.svg (sweep.h).
#pragma once

#include <string>

#include "lib/compress/sweep.h"

namespace presso {

std::string sweep_results_csv(const SweepResult& result);
nlohmann::json sweep_results_json(const SweepResult& result);
// Perplexity and mean KL against bits per weight; the original as the reference line.
std::string sweep_plot_svg(const SweepResult& result, const std::string& model_name);

// Writes the three files into `dir`, each to a temporary name then renamed.
void write_sweep_results(const SweepResult& result, const std::string& model_name,
                         const std::string& dir);

}  // namespace presso

// What `presso compress` did, typed: per linear what its passes left (scheme, sparsity, low-rank
// rank, metrics, notes) and its relative output error, per block the time of each step, and the
// job's settings. The driver fills it from the LinearStates the passes left; the CLI prints it;
// to_json() is presso_report.json.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/quant/scheme.h"

namespace presso {

struct LayerReport {
  std::string name;
  int64_t out_features = 0;
  int64_t in_features = 0;
  std::vector<std::string> passes;    // the recipe's passes that targeted it, in order
  std::optional<QuantScheme> scheme;  // stored quantized
  std::optional<double> sparsity;     // fraction pruned, when masked
  std::optional<int64_t> lowrank_rank;
  std::map<std::string, double> metrics;
  std::vector<std::string> notes;
  // ‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ on the calibration inputs; none without calibration or when unchanged.
  std::optional<double> relative_output_error;
};

struct BlockTimings {
  int block = 0;
  double load = 0, statistics = 0, passes = 0, rerun = 0, write = 0;  // seconds
  // On a GPU, the most MiB the allocator held at once during each step, by the names above.
  std::map<std::string, double> peak_device_mib;
};

struct CalibrationReport {
  std::string file;
  std::string format;
  int64_t nsamples = 0;
  int64_t seqlen = 0;
  uint64_t seed = 0;
};

struct CompressReport {
  std::string presso_version;
  std::string presso_commit;
  std::string libtorch;
  std::string model;
  std::string model_type;
  std::string recipe_file;
  std::string recipe;  // canonical YAML
  std::string format;
  std::string device;
  std::string activations_dtype;
  std::vector<std::string> warnings;
  std::optional<CalibrationReport> calibration;
  std::vector<LayerReport> layers;
  std::vector<BlockTimings> blocks;
  int64_t model_parameters = 0;    // of the source model, as transformers counts them
  int64_t lowrank_parameters = 0;  // Σ rank·(in + out) of the low-rank paths (the adapter)
  double seconds_total = 0;
  std::optional<double> peak_rss_mib;

  nlohmann::json to_json() const;
};

// One layer's and one block's entries as presso_report.json has them, and back (the resume
// journal keeps them so): from_json(to_json(x)) == x, doubles included.
nlohmann::json layer_report_json(const LayerReport& layer);
LayerReport layer_report_from_json(const nlohmann::json& json);
nlohmann::json block_timings_json(const BlockTimings& timings);
BlockTimings block_timings_from_json(const nlohmann::json& json);

}  // namespace presso

#include "lib/compress/report.h"

#include <algorithm>

namespace presso {
namespace {

using nlohmann::json;

template <typename T>
json optional_json(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

}  // namespace

json layer_report_json(const LayerReport& layer) {
  json out = {{"name", layer.name},
              {"shape", {layer.out_features, layer.in_features}},
              {"passes", layer.passes}};
  out["scheme"] = layer.scheme ? json{{"bits", layer.scheme->bits},
                                      {"group_size", layer.scheme->group_size},
                                      {"symmetric", layer.scheme->symmetric}}
                               : json(nullptr);
  if (layer.sparsity) out["sparsity"] = *layer.sparsity;
  if (layer.lowrank_rank) out["lowrank_rank"] = *layer.lowrank_rank;
  if (!layer.metrics.empty()) out["metrics"] = layer.metrics;
  if (!layer.notes.empty()) out["notes"] = layer.notes;
  out["relative_output_error"] = optional_json(layer.relative_output_error);
  return out;
}

LayerReport layer_report_from_json(const json& in) {
  LayerReport layer;
  layer.name = in.at("name").get<std::string>();
  layer.out_features = in.at("shape").at(0).get<int64_t>();
  layer.in_features = in.at("shape").at(1).get<int64_t>();
  layer.passes = in.at("passes").get<std::vector<std::string>>();
  if (const json& scheme = in.at("scheme"); !scheme.is_null()) {
    layer.scheme = QuantScheme{scheme.at("bits").get<int>(), scheme.at("group_size").get<int>(),
                               scheme.at("symmetric").get<bool>()};
  }
  if (in.contains("sparsity")) layer.sparsity = in.at("sparsity").get<double>();
  if (in.contains("lowrank_rank")) layer.lowrank_rank = in.at("lowrank_rank").get<int64_t>();
  if (in.contains("metrics")) layer.metrics = in.at("metrics").get<std::map<std::string, double>>();
  if (in.contains("notes")) layer.notes = in.at("notes").get<std::vector<std::string>>();
  if (const json& error = in.at("relative_output_error"); !error.is_null())
    layer.relative_output_error = error.get<double>();
  return layer;
}

json block_timings_json(const BlockTimings& b) {
  json out = {{"block", b.block},
              {"seconds",
               {{"load", b.load},
                {"statistics", b.statistics},
                {"passes", b.passes},
                {"rerun", b.rerun},
                {"write", b.write}}}};
  if (!b.peak_device_mib.empty()) out["peak_device_mib"] = b.peak_device_mib;
  return out;
}

BlockTimings block_timings_from_json(const json& in) {
  const json& seconds = in.at("seconds");
  BlockTimings timings{in.at("block").get<int>(),
                       seconds.at("load").get<double>(),
                       seconds.at("statistics").get<double>(),
                       seconds.at("passes").get<double>(),
                       seconds.at("rerun").get<double>(),
                       seconds.at("write").get<double>(),
                       {}};
  if (in.contains("peak_device_mib")) {
    timings.peak_device_mib = in.at("peak_device_mib").get<std::map<std::string, double>>();
  }
  return timings;
}

json CompressReport::to_json() const {
  json layers_json = json::array();
  for (const auto& layer : layers) layers_json.push_back(layer_report_json(layer));
  json blocks_json = json::array();
  for (const auto& b : blocks) blocks_json.push_back(block_timings_json(b));
  json out = {{"presso_version", presso_version},
              {"presso_commit", presso_commit},
              {"libtorch", libtorch},
              {"model", model},
              {"model_type", model_type},
              {"recipe_file", recipe_file},
              {"recipe", recipe},
              {"format", format},
              {"device", device},
              {"activations_dtype", activations_dtype},
              {"warnings", warnings},
              {"layers", layers_json},
              {"blocks", blocks_json}};
  out["calibration"] = calibration ? json{{"file", calibration->file},
                                          {"format", calibration->format},
                                          {"nsamples", calibration->nsamples},
                                          {"seqlen", calibration->seqlen},
                                          {"seed", calibration->seed}}
                                   : json(nullptr);
  out["model_parameters"] = model_parameters;
  out["lowrank_parameters"] = lowrank_parameters;
  out["seconds_total"] = seconds_total;
  out["peak_rss_mib"] = optional_json(peak_rss_mib);
  std::optional<double> peak_device_mib;  // the largest of the blocks' steps, on a GPU
  for (const auto& block : blocks) {
    for (const auto& [step, mib] : block.peak_device_mib)
      peak_device_mib = std::max(peak_device_mib.value_or(0.0), mib);
  }
  out["peak_device_mib"] = optional_json(peak_device_mib);
  return out;
}

}  // namespace presso

#include "lib/compress/report.h"

namespace presso {
namespace {

using nlohmann::json;

template <typename T>
json optional_json(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

json layer_json(const LayerReport& layer) {
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

}  // namespace

json CompressReport::to_json() const {
  json layers_json = json::array();
  for (const auto& layer : layers) layers_json.push_back(layer_json(layer));
  json blocks_json = json::array();
  for (const auto& b : blocks) {
    blocks_json.push_back({{"block", b.block},
                           {"seconds",
                            {{"load", b.load},
                             {"statistics", b.statistics},
                             {"passes", b.passes},
                             {"rerun", b.rerun},
                             {"write", b.write}}}});
  }
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
  return out;
}

}  // namespace presso

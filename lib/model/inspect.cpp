#include "lib/model/inspect.h"

#include <fmt/format.h>

#include <map>

#include "lib/model/model.h"

namespace presso {
namespace {

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, units[unit]);
}

std::string describe_rope(const ModelConfig& c) {
  if (!c.rope) return "none (learned positions)";
  const RopeConfig& r = *c.rope;
  std::string text = fmt::format("{}, theta {}", rope_type_name(r.type), r.theta);
  if (r.type != RopeType::kDefault) text += fmt::format(", factor {}", r.factor);
  if (r.type == RopeType::kLlama3) {
    text += fmt::format(", low/high freq factor {}/{}, original max positions {}",
                        r.low_freq_factor, r.high_freq_factor, r.original_max_position_embeddings);
  }
  return text;
}

std::string describe_windows(const ModelConfig& c) {
  std::map<int64_t, int> counts;
  for (int64_t w : c.sliding_windows) ++counts[w];
  std::string text;
  for (const auto& [window, layers] : counts) {
    if (!text.empty()) text += ", ";
    text += window == 0 ? fmt::format("full causal ({} layers)", layers)
                        : fmt::format("sliding {} ({} layers)", window, layers);
  }
  return text;
}

}  // namespace

std::string inspect_model(const std::string& dir) {
  const Model model = Model::open(dir);
  model.check_tensor_shapes();
  const ModelConfig& c = model.config();
  const TensorStore& store = model.tensors();
  std::string out;
  auto line = [&out](const std::string& key, const std::string& value) {
    out += fmt::format("{:<22}{}\n", key + ":", value);
  };
  line("model", dir);
  line("model_type", fmt::format("{} (family {})", c.model_type, c.family));
  line("layers", std::to_string(c.num_layers));
  line("hidden size", std::to_string(c.hidden_size));
  line("attention heads",
       fmt::format("{} ({} kv heads, head_dim {})", c.num_heads, c.num_kv_heads, c.head_dim));
  line("intermediate size", std::to_string(c.intermediate_size));
  line("vocab size", std::to_string(c.vocab_size));
  line("max positions", std::to_string(c.max_position_embeddings));
  line("rope", describe_rope(c));
  line("attention", describe_windows(c));
  line("activation", activation_name(c.activation));
  line("tied embeddings", c.tie_word_embeddings ? "yes" : "no");
  line("parameters", fmt::format("{} ({:.2f} M)", model.parameter_count(),
                                 static_cast<double>(model.parameter_count()) / 1e6));
  std::map<std::string, std::pair<int, uint64_t>> by_dtype;  // dtype -> tensors, bytes
  for (const auto& name : store.names()) {
    const TensorInfo& info = store.info(name);
    auto& entry = by_dtype[st_dtype_name(info.dtype)];
    ++entry.first;
    entry.second += info.end - info.begin;
  }
  std::string dtypes;
  for (const auto& [dtype, entry] : by_dtype) {
    if (!dtypes.empty()) dtypes += ", ";
    dtypes += fmt::format("{} ({} tensors, {})", dtype, entry.first, human_bytes(entry.second));
  }
  line("stored dtypes", dtypes);
  line("stored bytes",
       fmt::format("{} in {} file(s)", human_bytes(store.total_bytes()), store.files().size()));
  if (c.quantization_config.empty()) {
    line("quantization", "none");
  } else {
    // Every linear module with a weight of its own, and how many the checkpoint stores packed.
    size_t linears = 0, packed = 0;
    for (const auto& linear : model.linears()) {
      if (linear.tied) continue;
      ++linears;
      packed += model.packed().is_packed(linear.name, store) ? 1 : 0;
    }
    line("quantization", model.packed().describe());
    line("packed linears", fmt::format("{} of {} (dequantized to fp32 on load)", packed, linears));
  }
  return out;
}

}  // namespace presso

// Reading config.json's quantization_config into a PackedWeights: one parser per quant_method
// presso reads, every problem listed at once; and its one-line description for `inspect`.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>

#include "lib/common/errors.h"
#include "lib/common/text.h"
#include "lib/model/config_reader.h"
#include "lib/model/packed_weights.h"

namespace presso {
namespace {

using nlohmann::json;

constexpr const char* kSupported =
    "presso reads compressed-tensors (format pack-quantized), gptq (checkpoint_format gptq or "
    "gptq_v2) and awq (version gemm)";

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// "0.18.0" -> {0, 18}; what cannot be read counts as current.
std::pair<int, int> major_minor(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2) return {1 << 20, 0};
  return {major, minor};
}

// A key that must be absent, null or empty (an object or list without entries): presso would
// silently compute something else than the serving engine if it ignored it.
void refuse_unless_empty(ConfigReader& r, const json& object, const std::string& key,
                         const std::string& why) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null() || (it->is_object() && it->empty()) ||
      (it->is_array() && it->empty())) {
    return;
  }
  r.problem(key, why);
}

// config.json's integer under `key` as an int; beyond int's range it is a problem (not wrapped:
// 2^32 + 4 bits would read as 4), and `stand_in`, a value the later checks accept, is returned so
// that the problem is listed once.
int as_int(ConfigReader& r, const std::string& key, int64_t value, int stand_in) {
  if (value >= std::numeric_limits<int>::min() && value <= std::numeric_limits<int>::max()) {
    return static_cast<int>(value);
  }
  r.problem(key, fmt::format("{} is out of range", value));
  return stand_in;
}

}  // namespace

bool PackedWeights::Target::matches(const std::string& name) const {
  if (regex) return regex->matches_start(name, described);
  // "Linear" is the layer class every target list of llm-compressor uses; vLLM matches it
  // against its linear layers, i.e. every linear presso has.
  return text == name || text == "Linear";
}

// Reads each method's keys into a PackedWeights; problems go to the ConfigReader, which names
// config.json and the key, and are thrown together by parse().
struct PackedWeights::ConfigParser {
  static std::optional<Target> target(ConfigReader& r, const std::string& key,
                                      const std::string& text) {
    Target target{text, std::nullopt,
                  fmt::format("{}: quantization_config {} '{}'", r.file(), key, abbreviate(text))};
    if (text.rfind("re:", 0) != 0) return target;
    try {
      target.regex.emplace(std::string_view(text).substr(3), /*unicode=*/false);
    } catch (const std::invalid_argument& e) {
      r.problem(key, fmt::format("'{}' is not a regular expression presso can read: {}",
                                 abbreviate(text), e.what()));
      return std::nullopt;
    }
    return target;
  }

  // One config group with format pack-quantized: targets and weight scheme.
  static void compressed_tensors_group(PackedWeights& packed, ConfigReader& g, const json& raw,
                                       const std::string& name) {
    refuse_unless_empty(g, raw, "input_activations",
                        "activation quantization is not supported (weight-only schemes only)");
    refuse_unless_empty(g, raw, "output_activations",
                        "activation quantization is not supported (weight-only schemes only)");
    Group group;
    group.name = name;
    for (const auto& text : g.optional_string_list("targets").value_or(std::vector<std::string>{}))
      if (auto t = target(g, "targets", text)) group.targets.push_back(std::move(*t));
    if (group.targets.empty()) g.problem("targets", "missing or empty (required list)");
    std::optional<ConfigReader> w = g.optional_object("weights");
    if (!w) {
      g.problem("weights", "missing: only weight quantization is supported");
      return;
    }
    const json& raw_weights = raw.at("weights");
    const std::string type = w->string_or("type", "int");
    if (type != "int") w->problem("type", fmt::format("'{}' is not supported (only int)", type));
    group.scheme.bits = as_int(*w, "num_bits", w->int_or("num_bits", 8), 4);
    group.scheme.symmetric = w->bool_or("symmetric", true);
    // QuantizationArgs infers a missing strategy from group_size (quant_args.py).
    const std::optional<int64_t> group_size = w->optional_int("group_size");
    std::string strategy = w->string_or("strategy", "");
    if (strategy.empty())
      strategy = !group_size ? "tensor" : *group_size == -1 ? "channel" : "group";
    if (strategy == "group") {
      if (!group_size || *group_size <= 0) {
        w->problem("group_size", "strategy 'group' needs a positive group_size");
      }
      group.scheme.group_size = as_int(*w, "group_size", group_size.value_or(128), 128);
    } else if (strategy == "channel") {
      group.scheme.group_size = -1;
    } else {
      w->problem("strategy", fmt::format("'{}' is not supported (group or channel)", strategy));
    }
    if (group.scheme.bits < 2 || group.scheme.bits > 8) {
      w->problem("num_bits", fmt::format("{} is not supported (2..8)", group.scheme.bits));
    }
    if (auto d = raw_weights.find("dynamic");
        d != raw_weights.end() && !d->is_null() && *d != json(false)) {
      w->problem("dynamic", "dynamic weight quantization is not supported");
    }
    if (auto a = raw_weights.find("actorder"); a != raw_weights.end()) {
      group.actorder_group = (a->is_string() && (*a == "group" || *a == "dynamic")) ||
                             (a->is_boolean() && a->get<bool>());
    }
    // Before 0.18, pack_to_int32 put 32 // b values in a word with no straddling, which differs
    // from today's dense packing exactly when b does not divide 32.
    const int bits = group.scheme.bits;
    if (bits > 0 && 32 % bits != 0 && !packed.version_.empty() &&
        major_minor(packed.version_) < std::pair<int, int>{0, 18}) {
      w->problem("num_bits",
                 fmt::format("{} bits written by compressed-tensors {} use the packing of before "
                             "0.18 (32 // {} values per word), which presso does not read (it "
                             "reads the 0.18 dense layout)",
                             bits, packed.version_, bits));
    }
    packed.groups_.push_back(std::move(group));
  }

  static void compressed_tensors(PackedWeights& packed, ConfigReader& q, const json& raw) {
    packed.method_ = PackedMethod::kCompressedTensors;
    packed.version_ = q.string_or("version", "");
    const std::string format = q.string_or("format", "");
    refuse_unless_empty(q, raw, "kv_cache_scheme",
                        "kv-cache quantization is not supported (presso computes attention in "
                        "fp32 and would not match the serving engine)");
    // transform_config {} and sparsity_config {} are what upstream writes when unused.
    if (auto t = raw.find("transform_config"); t != raw.end() && t->is_object()) {
      auto groups = t->find("config_groups");
      if (groups != t->end() && !groups->is_null() && !groups->empty()) {
        q.problem("transform_config", "online transforms (rotations) are not supported");
      }
    }
    bool sparse = false;
    if (auto s = raw.find("sparsity_config"); s != raw.end() && s->is_object() && !s->empty()) {
      sparse = true;
      const std::string sparse_format = s->value("format", std::string("dense"));
      // sparse-24-bitmask replaces a 2:4 linear's `.weight` (sparse_24_bitmask.py); which
      // linears it compressed shows in the store (their `.bitmask`).
      if (sparse_format == "sparse-24-bitmask") {
        packed.sparse_24_ = true;
      } else if (sparse_format != "dense") {
        q.problem("sparsity_config.format",
                  fmt::format("'{}' (compressed sparse weights) is not supported; {}",
                              sparse_format, kSupported));
      }
    }
    // A model that is only pruned has a sparsity_config and no quantization groups.
    std::optional<ConfigReader> groups = q.optional_object("config_groups");
    if (!groups && !sparse) q.problem("config_groups", "missing (required object)");
    bool top_format_reported = false;
    if (groups) {
      for (const auto& [name, value] : raw.at("config_groups").items()) {
        std::optional<ConfigReader> g = groups->optional_object(name);
        if (!g) continue;  // null, or not an object (reported)
        // A group without its own format takes the top-level one.
        const bool own_format = g->has("format");
        const std::string group_format = own_format ? g->string_or("format", "") : format;
        if (group_format == "dense") continue;  // weights stored as plain `.weight`
        if (group_format == "pack-quantized") {
          compressed_tensors_group(packed, *g, value, name);
          continue;
        }
        if (own_format || !top_format_reported) {
          (own_format ? *g : q)
              .problem("format", fmt::format("{} is not supported; {}",
                                             group_format.empty() ? std::string("a missing format")
                                                                  : "'" + group_format + "'",
                                             kSupported));
        }
        top_format_reported = top_format_reported || !own_format;
      }
    }
    for (const auto& text : q.optional_string_list("ignore").value_or(std::vector<std::string>{}))
      if (auto t = target(q, "ignore", text)) packed.ignore_.push_back(std::move(*t));
  }

  static void gptq(PackedWeights& packed, ConfigReader& q, const json& raw) {
    packed.method_ = PackedMethod::kGptq;
    // GPTQModel writes both `checkpoint_format` and `format`; AutoGPTQ's older configs neither
    // (they are v1).
    const std::string key = q.has("checkpoint_format") ? "checkpoint_format" : "format";
    packed.version_ = q.string_or(key, "gptq");
    if (packed.version_ != "gptq" && packed.version_ != "gptq_v2") {
      q.problem(key, fmt::format("'{}' is not supported; presso reads GPTQ checkpoints in "
                                 "checkpoint_format 'gptq' (v1, zero points stored minus one) "
                                 "and 'gptq_v2' only",
                                 packed.version_));
    }
    if (q.bool_or("is_marlin_format", false)) {
      q.problem("is_marlin_format", "marlin-packed GPTQ checkpoints are not supported");
    }
    packed.scheme_.bits = as_int(q, "bits", q.required_int("bits"), 4);
    packed.scheme_.group_size = as_int(q, "group_size", q.required_int("group_size"), 128);
    packed.scheme_.symmetric = q.bool_or("sym", true);
    packed.desc_act_ = q.bool_or("desc_act", false);
    const int bits = packed.scheme_.bits;
    if (q.has("bits") && bits != 2 && bits != 3 && bits != 4 && bits != 8) {
      q.problem("bits", fmt::format("{} is not a GPTQ width (2, 3, 4 or 8)", bits));
    }
    if (q.has("group_size") && packed.scheme_.group_size != -1 && packed.scheme_.group_size <= 0) {
      q.problem("group_size",
                fmt::format("{} is invalid (positive, or -1)", packed.scheme_.group_size));
    }
    refuse_unless_empty(q, raw, "dynamic",
                        "per-module overrides (GPTQModel `dynamic`) are not supported");
  }

  static void awq(PackedWeights& packed, ConfigReader& q, const json&) {
    packed.method_ = PackedMethod::kAwq;
    packed.version_ = lower(q.string_or("version", "gemm"));
    if (packed.version_ != "gemm") {
      q.problem("version", fmt::format("'{}' is not supported; presso reads AutoAWQ GEMM "
                                       "checkpoints (version 'gemm') only",
                                       packed.version_));
    }
    const std::string backend = q.string_or("backend", "autoawq");
    if (backend != "autoawq") {
      q.problem("backend", fmt::format("'{}' is not supported (autoawq only)", backend));
    }
    // transformers' AwqConfig spells them bits / group_size, AutoAWQ's quant_config.json
    // w_bit / q_group_size; vLLM accepts both.
    const std::string bits_key = q.has("bits") || !q.has("w_bit") ? "bits" : "w_bit";
    const std::string group_key =
        q.has("group_size") || !q.has("q_group_size") ? "group_size" : "q_group_size";
    packed.scheme_.bits = as_int(q, bits_key, q.required_int(bits_key), 4);
    packed.scheme_.group_size = as_int(q, group_key, q.required_int(group_key), 128);
    packed.scheme_.symmetric = !q.bool_or("zero_point", true);
    if (q.has(bits_key) && packed.scheme_.bits != 4) {
      q.problem(bits_key,
                fmt::format("{} is not supported (AWQ GEMM is 4-bit)", packed.scheme_.bits));
    }
    if (q.has(group_key) && packed.scheme_.group_size != -1 && packed.scheme_.group_size <= 0) {
      q.problem(group_key,
                fmt::format("{} is invalid (positive, or -1)", packed.scheme_.group_size));
    }
    packed.not_converted_ =
        q.optional_string_list("modules_to_not_convert").value_or(std::vector<std::string>{});
  }

  // --- What each method's packed linears look like once parsed.

  static std::string names(const std::vector<std::string>& list) {
    if (list.empty()) return std::string("none");
    std::vector<std::string> shown(list.begin(), list.begin() + std::min<size_t>(list.size(), 3));
    return fmt::format("{}{}", fmt::join(shown, ", "),
                       list.size() > 3 ? fmt::format(" and {} more", list.size() - 3) : "");
  }

  static std::string describe_compressed_tensors(const PackedWeights& p) {
    std::vector<std::string> groups, ignore;
    for (const auto& g : p.groups_) {
      std::vector<std::string> targets;
      for (const auto& t : g.targets) targets.push_back(t.text);
      groups.push_back(fmt::format("{} {}{} -> {}", g.name, scheme_description(g.scheme),
                                   g.actorder_group ? " with g_idx" : "", names(targets)));
    }
    for (const auto& t : p.ignore_) ignore.push_back(t.text);
    return fmt::format(
        "compressed-tensors pack-quantized (version {}): {}; ignore: {}{}",
        p.version_.empty() ? "unstated" : p.version_,
        groups.empty() ? "no packed groups" : fmt::format("{}", fmt::join(groups, "; ")),
        names(ignore), p.sparse_24_ ? "; 2:4 linears stored sparse-24-bitmask" : "");
  }

  static std::string describe_gptq(const PackedWeights& p) {
    return fmt::format("gptq (checkpoint_format {}): {}, desc_act {}", p.version_,
                       scheme_description(p.scheme_), p.desc_act_ ? "true" : "false");
  }

  static std::string describe_awq(const PackedWeights& p) {
    return fmt::format("awq (version {}): {}; modules_to_not_convert: {}", p.version_,
                       scheme_description(p.scheme_), names(p.not_converted_));
  }

  // One row per quant_method presso reads: how its config parses and reads in `inspect`.
  struct Method {
    PackedMethod id;
    const char* quant_method;
    void (*parse)(PackedWeights&, ConfigReader&, const json&);
    std::string (*describe)(const PackedWeights&);
  };

  static const std::vector<Method>& methods() {
    static const std::vector<Method> table = {
        {PackedMethod::kCompressedTensors, "compressed-tensors", compressed_tensors,
         describe_compressed_tensors},
        {PackedMethod::kGptq, "gptq", gptq, describe_gptq},
        {PackedMethod::kAwq, "awq", awq, describe_awq},
    };
    return table;
  }

  static const Method* find(PackedMethod id) {
    for (const auto& method : methods())
      if (method.id == id) return &method;
    return nullptr;
  }
  static const Method* find(const std::string& quant_method) {
    for (const auto& method : methods())
      if (quant_method == method.quant_method) return &method;
    return nullptr;
  }
};

PackedWeights PackedWeights::parse(const std::string& quantization_config,
                                   const std::string& config_path, const std::string& dtype) {
  PackedWeights packed;
  if (quantization_config.empty()) return packed;
  if (dtype == "float16") packed.scale_dtype_ = torch::kFloat16;
  if (dtype == "bfloat16") packed.scale_dtype_ = torch::kBFloat16;
  json root;
  try {
    root = json{{"quantization_config", json::parse(quantization_config)}};
  } catch (const json::exception& e) {
    fail_user("{}: key 'quantization_config': invalid JSON: {}", config_path, e.what());
  }
  const json& raw = root["quantization_config"];
  ConfigReader top(root, config_path);
  std::optional<ConfigReader> reader = top.optional_object("quantization_config");
  if (reader) {
    ConfigReader& q = *reader;
    const std::string name = q.string_or("quant_method", "");
    if (name.empty()) {
      q.problem("quant_method", fmt::format("missing; {}", kSupported));
    } else if (const ConfigParser::Method* method = ConfigParser::find(name)) {
      method->parse(packed, q, raw);
    } else {
      q.problem("quant_method", fmt::format("'{}' is not supported; {}", name, kSupported));
    }
  }
  top.throw_if_problems();
  return packed;
}

std::string PackedWeights::describe() const {
  const ConfigParser::Method* method = ConfigParser::find(method_);
  return method ? method->describe(*this) : "none";
}

}  // namespace presso

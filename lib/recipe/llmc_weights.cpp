// QuantizationMixin arguments of llm-compressor modifiers read into our quantization keys.
// Sources: llm-compressor src/llmcompressor/modifiers/quantization/quantization/mixin.py and
// modifiers/gptq/base.py; compressed-tensors 0.18.0 src/compressed_tensors/quantization/
// quant_scheme.py (presets, QuantizationScheme) and quant_args.py (QuantizationArgs).
#include "lib/recipe/llmc_weights.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace presso::recipe_internal {
namespace {

constexpr const char* kWeightOnly = "presso does weight-only integer quantization";

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool is_set(const YAML::Node& node) { return node && !node.IsNull(); }

// A group before GPTQ's actorder is settled.
struct ParsedGroup {
  WeightGroup group;
  std::string actorder;  // "" (None), "weight" or "group"
  std::optional<int64_t> group_size;
};

class QuantizerReader {
 public:
  QuantizerReader(const YAML::Mark& mark, const std::string& label, ProblemList& problems,
                  std::vector<std::string>& warnings)
      : mark_(mark), label_(label), problems_(problems), warnings_(warnings) {}

  void add(const YAML::Mark& mark, const std::string& text) { problems_.add(mark, label_, text); }
  void warn(const YAML::Mark& mark, const std::string& text) {
    warnings_.push_back(
        fmt::format("{}:{}: {}: {}", problems_.file(), mark.line + 1, label_, text));
  }
  void unsupported(const YAML::Mark& mark, const std::string& key, const std::string& what) {
    add(mark, fmt::format("{}: {} is not supported; {}", key, what, kWeightOnly));
  }

  // Observer name -> our `mse` flag. Weights are observed once, so the min-max variants agree
  // (observers registered in llm-compressor src/llmcompressor/observers/).
  std::optional<RawOption> read_observer(const YAML::Node& value, const std::string& key,
                                         const YAML::Mark& mark) {
    if (!value.IsScalar()) {
      add(mark, fmt::format("{}: expected an observer name, got {}", key, describe_node(value)));
      return std::nullopt;
    }
    std::string name = lower(value.Scalar());
    if (name == "minmax" || name == "memoryless_minmax" || name == "static_minmax") {
      return RawOption{"mse", key, YAML::Node(false), mark};
    }
    if (name == "mse" || name == "memoryless_mse")
      return RawOption{"mse", key, YAML::Node(true), mark};
    add(mark, fmt::format("{}: observer '{}' is not supported (use minmax, memoryless_minmax, "
                          "static_minmax, mse or memoryless_mse)",
                          key, value.Scalar()));
    return std::nullopt;
  }

  // ActivationOrdering (quant_args.py): true means group, false and null none; "dynamic" and
  // "static" are aliases of "group" and "weight". Returns "" for none.
  std::optional<std::string> read_actorder(const YAML::Node& value, const std::string& key,
                                           const YAML::Mark& mark) {
    if (!is_set(value)) return std::string();
    bool flag = false;
    if (value.IsScalar() && value.Tag() != "!" && YAML::convert<bool>::decode(value, flag)) {
      return flag ? std::string("group") : std::string();
    }
    std::string word = value.IsScalar() ? lower(value.Scalar()) : "";
    if (word == "group" || word == "dynamic") return std::string("group");
    if (word == "weight" || word == "static") return std::string("weight");
    add(mark, fmt::format("{}: {} is not one of: static, weight, group, dynamic, null", key,
                          describe_node(value)));
    return std::nullopt;
  }

  // A preset of quant_scheme.py: W<n>A16 (n = 2..8) is int<n> symmetric with groups of 128
  // (_int_wnam; W8A16 was per channel before compressed-tensors 0.16), W4A16_ASYM the same at 4
  // bits with a zero point. Names are case-insensitive (preset_name_to_scheme upper-cases them).
  std::optional<ParsedGroup> read_preset(const std::string& name, const YAML::Mark& mark,
                                         const YAML::Node& targets,
                                         const YAML::Mark& targets_mark) {
    static const std::vector<std::string> kOthers = {
        "W8A8",  "INT8",     "W4AFP8", "FP8",      "FP8_DYNAMIC", "FP8_BLOCK", "NVFP4A16",
        "NVFP4", "MXFP4A16", "MXFP4",  "MXFP8A16", "MXFP8",       "W2A4",      "W2A8",
        "W3A4",  "W3A8",     "W4A4",   "W4A8",     "W5A8",        "W6A8",      "W7A8"};
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    int bits = 0;
    bool symmetric = true;
    if (upper.size() == 5 && upper[0] == 'W' && upper[1] >= '2' && upper[1] <= '8' &&
        upper.compare(2, 3, "A16") == 0) {
      bits = upper[1] - '0';
    } else if (upper == "W4A16_ASYM") {
      bits = 4;
      symmetric = false;
    } else if (upper == "UNQUANTIZED") {
      add(mark,
          "scheme: preset UNQUANTIZED quantizes nothing; leave those linears out of the "
          "targets instead");
      return std::nullopt;
    } else if (std::find(kOthers.begin(), kOthers.end(), upper) != kOthers.end()) {
      add(mark, fmt::format("scheme: preset '{}' quantizes activations or uses float weights; {} "
                            "(presets read: W2A16 ... W8A16, W4A16_ASYM)",
                            name, kWeightOnly));
      return std::nullopt;
    } else {
      add(mark, fmt::format("scheme: unknown preset '{}'{} (presets read: W2A16 ... W8A16, "
                            "W4A16_ASYM)",
                            name, did_you_mean(upper, {"W4A16", "W4A16_ASYM", "W8A16"})));
      return std::nullopt;
    }
    ParsedGroup parsed;
    parsed.group.targets = RawOption{"targets", "scheme." + name, targets, targets_mark};
    parsed.group.quant = {RawOption{"bits", "scheme", YAML::Node(bits), mark},
                          RawOption{"group_size", "scheme", YAML::Node(128), mark},
                          RawOption{"symmetric", "scheme", YAML::Node(symmetric), mark},
                          RawOption{"mse", "scheme", YAML::Node(false), mark}};
    parsed.group_size = 128;
    return parsed;
  }

  // QuantizationArgs (quant_args.py, extra="forbid"): num_bits defaults to 8, symmetric to true;
  // without a strategy, a group_size > 0 means group, -1 channel, none tensor.
  std::optional<ParsedGroup> read_weights(const YAML::Node& node, const std::string& prefix,
                                          const YAML::Mark& mark) {
    static const std::vector<std::string> kKeys = {
        "num_bits", "type",     "symmetric",   "group_size", "strategy", "block_structure",
        "dynamic",  "actorder", "scale_dtype", "zp_dtype",   "observer", "observer_kwargs"};
    if (!node.IsMap()) {
      add(mark, fmt::format("{}: expected a mapping, got {}", prefix, describe_node(node)));
      return std::nullopt;
    }
    ParsedGroup parsed;
    auto& quant = parsed.group.quant;
    size_t before = problems_.size();
    YAML::Node group_size, strategy;
    YAML::Mark group_size_mark = mark, strategy_mark = mark;
    for (const auto& field : node) {
      std::string key = field.first.Scalar(), shown = prefix + "." + key;
      YAML::Mark at = field.first.Mark();
      const YAML::Node& value = field.second;
      if (key == "num_bits") {
        quant.push_back(RawOption{"bits", shown, value, at});
      } else if (key == "symmetric") {
        quant.push_back(RawOption{"symmetric", shown, value, at});
      } else if (key == "observer") {
        if (is_set(value)) {
          if (auto mse = read_observer(value, shown, at)) quant.push_back(*mse);
        }
      } else if (key == "type") {
        std::string type = value.IsScalar() ? lower(value.Scalar()) : "";
        if (type == "float") {
          unsupported(at, shown, "type float");
        } else if (type != "int") {
          add(at, fmt::format("{}: {} is not one of: int, float", shown, describe_node(value)));
        }
      } else if (key == "group_size") {
        group_size = value;
        group_size_mark = at;
      } else if (key == "strategy") {
        strategy = value;
        strategy_mark = at;
      } else if (key == "actorder") {
        if (auto actorder = read_actorder(value, shown, at)) parsed.actorder = *actorder;
      } else if (key == "dynamic") {
        bool flag = false;
        if (is_set(value) && (!YAML::convert<bool>::decode(value, flag) || flag)) {
          unsupported(at, shown, "dynamic quantization");
        }
      } else if (key == "block_structure") {
        if (is_set(value)) unsupported(at, shown, "strategy block");
      } else if (key == "scale_dtype" || key == "zp_dtype") {
        if (is_set(value)) unsupported(at, shown, "a custom scale or zero-point dtype");
      } else if (key == "observer_kwargs") {
        if (is_set(value) && value.size() > 0) unsupported(at, shown, "observer_kwargs");
      } else {
        add(at, fmt::format("unknown key '{}'{} (compressed-tensors forbids extra inputs)", shown,
                            did_you_mean(key, kKeys)));
      }
    }
    read_grouping(group_size, group_size_mark, strategy, strategy_mark, prefix, parsed);
    auto has = [&](const char* key) {
      return std::any_of(quant.begin(), quant.end(),
                         [&](const RawOption& option) { return option.key == key; });
    };
    if (!has("bits")) quant.push_back(RawOption{"bits", prefix, YAML::Node(8), mark});
    if (!has("symmetric")) quant.push_back(RawOption{"symmetric", prefix, YAML::Node(true), mark});
    if (!has("mse")) quant.push_back(RawOption{"mse", prefix, YAML::Node(false), mark});
    if (parsed.actorder == "group" && parsed.group_size && *parsed.group_size < 1) {
      add(mark, fmt::format("{}.actorder: group needs strategy group (compressed-tensors rejects "
                            "it with per-channel scales)",
                            prefix));
    }
    if (problems_.size() != before) return std::nullopt;
    return parsed;
  }

  // strategy and group_size into our group_size (-1 = per channel).
  void read_grouping(const YAML::Node& group_size, const YAML::Mark& group_size_mark,
                     const YAML::Node& strategy, const YAML::Mark& strategy_mark,
                     const std::string& prefix, ParsedGroup& parsed) {
    std::optional<int64_t> size;
    int64_t value = 0;
    if (is_set(group_size) && YAML::convert<int64_t>::decode(group_size, value)) size = value;
    std::string kind = is_set(strategy) && strategy.IsScalar() ? lower(strategy.Scalar()) : "";
    if (is_set(strategy) && kind.empty()) {
      add(strategy_mark, prefix + ".strategy: expected a word, got " + describe_node(strategy));
      return;
    }
    if (kind.empty())
      kind = !is_set(group_size) ? "tensor" : size && *size == -1 ? "channel" : "group";
    if (kind == "group") {
      if (is_set(group_size) && size && *size <= 0) {
        add(is_set(strategy) ? strategy_mark : group_size_mark,
            fmt::format("{}: strategy group needs group_size > 0, got {}", prefix, *size));
        return;
      }
      if (!is_set(group_size)) {
        add(strategy_mark, prefix + ": strategy group needs a group_size");
        return;
      }
      // A non-integer group_size goes on to fail type validation with its own message.
      parsed.group.quant.push_back(
          RawOption{"group_size", prefix + ".group_size", group_size, group_size_mark});
      parsed.group_size = size;
    } else if (kind == "channel") {
      if (size && *size > 0) {
        add(group_size_mark, prefix + ".group_size: a group_size > 0 needs strategy group");
        return;
      }
      parsed.group.quant.push_back(
          RawOption{"group_size", prefix + ".strategy", YAML::Node(-1), strategy_mark});
      parsed.group_size = -1;
    } else if (kind == "tensor" || kind == "block" || kind == "token" || kind == "tensor_group" ||
               kind == "attn_head") {
      unsupported(is_set(strategy) ? strategy_mark : group_size_mark,
                  prefix + (is_set(strategy) ? ".strategy" : ""),
                  is_set(strategy) ? "strategy " + kind
                                   : "one scale per tensor (no group_size or strategy given)");
    } else {
      add(strategy_mark, fmt::format("{}.strategy: '{}' is not one of: tensor, channel, group, "
                                     "block, token, tensor_group, attn_head",
                                     prefix, strategy.Scalar()));
    }
  }

  // One entry of config_groups: a QuantizationScheme (quant_scheme.py, extra="forbid").
  std::optional<ParsedGroup> read_config_group(const std::string& name, const YAML::Node& node,
                                               const YAML::Mark& mark) {
    std::string prefix = "config_groups." + name;
    if (!node.IsMap()) {
      add(mark, fmt::format("{}: expected a mapping, got {}", prefix, describe_node(node)));
      return std::nullopt;
    }
    YAML::Node targets, weights;
    YAML::Mark targets_mark = mark, weights_mark = mark;
    bool ok = true;
    for (const auto& field : node) {
      std::string key = field.first.Scalar();
      YAML::Mark at = field.first.Mark();
      if (key == "targets") {
        targets = field.second;
        targets_mark = at;
      } else if (key == "weights") {
        weights = field.second;
        weights_mark = at;
      } else if (key == "input_activations" || key == "output_activations") {
        if (is_set(field.second)) {
          unsupported(at, prefix + "." + key, "activation quantization");
          ok = false;
        }
      } else if (key != "format") {  // format picks a serialisation; presso chooses its own
        add(at, fmt::format("unknown key '{}.{}'{} (compressed-tensors forbids extra inputs)",
                            prefix, key,
                            did_you_mean(key, {"targets", "weights", "input_activations",
                                               "output_activations", "format"})));
        ok = false;
      }
    }
    if (!is_set(targets)) {
      add(mark, prefix + ": missing required key 'targets'");
      ok = false;
    }
    if (!is_set(weights)) {
      if (ok) warn(mark, prefix + " has no weights scheme: it quantizes nothing");
      return std::nullopt;
    }
    auto parsed = read_weights(weights, prefix + ".weights", weights_mark);
    if (!ok || !parsed) return std::nullopt;
    parsed->group.targets = RawOption{"targets", prefix + ".targets", targets, targets_mark};
    return parsed;
  }

  const YAML::Mark& mark() const { return mark_; }

 private:
  YAML::Mark mark_;
  std::string label_;
  ProblemList& problems_;
  std::vector<std::string>& warnings_;
};

}  // namespace

QuantizerArgs read_quantizer_args(const ModifierArgs& args, const YAML::Mark& mark,
                                  const std::string& label, bool gptq, ProblemList& problems,
                                  std::vector<std::string>& warnings) {
  QuantizerReader reader(mark, label, problems, warnings);
  QuantizerArgs out;
  YAML::Node scheme, config_groups;
  YAML::Node targets(std::vector<std::string>{"Linear"});  // QuantizationMixin.targets default
  YAML::Mark scheme_mark = mark, groups_mark = mark, targets_mark = mark;
  std::optional<RawOption> weight_observer, observer_dict;
  std::vector<RawOption> solver;
  std::optional<std::string> actorder;  // set: the user gave GPTQModifier.actorder
  YAML::Mark actorder_mark = mark;
  size_t before = problems.size();

  for (const auto& [key_node, value] : args) {
    std::string key = key_node.Scalar();
    YAML::Mark at = key_node.Mark();
    if (key == "scheme") {
      scheme = value;
      scheme_mark = at;
    } else if (key == "config_groups") {
      config_groups = value;
      groups_mark = at;
    } else if (key == "targets") {
      targets = value;
      targets_mark = at;
    } else if (key == "ignore") {
      out.ignore = RawOption{"ignore", "ignore", value, at};
    } else if (key == "kv_cache_scheme") {
      if (is_set(value)) reader.unsupported(at, key, "KV-cache quantization");
    } else if (key == "input_observer" || key == "output_observer") {
      if (is_set(value)) reader.warn(at, key + " has no effect: presso quantizes no activations");
    } else if (key == "weight_observer") {
      if (is_set(value)) weight_observer = reader.read_observer(value, key, at);
    } else if (key == "observer" && is_set(value)) {
      // The observer mapping wins over weight_observer (mixin.py, _apply_observer_overrides).
      if (!value.IsMap()) {
        reader.add(at, "observer: expected a mapping of weights/input/output, got " +
                           describe_node(value));
        continue;
      }
      for (const auto& field : value) {
        std::string which = field.first.Scalar();
        if (which == "weights") {
          observer_dict = reader.read_observer(field.second, "observer.weights", at);
        } else if (which == "input" || which == "output") {
          reader.warn(at, "observer." + which + " has no effect: presso quantizes no activations");
        } else {
          reader.add(
              field.first.Mark(),
              fmt::format("observer: invalid key '{}' (valid: weights, input, output)", which));
        }
      }
    } else if (key == "bypass_divisibility_checks") {
      bool flag = false;
      if (is_set(value) && (!YAML::convert<bool>::decode(value, flag) || flag)) {
        reader.add(at,
                   "bypass_divisibility_checks: only false is supported (packing needs the "
                   "group size to divide every input width)");
      }
    } else if (gptq && key == "block_size") {
      solver.push_back(RawOption{"block_size", key, value, at});
    } else if (gptq && key == "dampening_frac") {
      // None turns dampening off (GPTQModifier.dampening_frac: float | None).
      solver.push_back(RawOption{"damp", key, is_set(value) ? value : YAML::Node(0.0), at});
    } else if (gptq && key == "actorder") {
      actorder = reader.read_actorder(value, key, at);
      actorder_mark = at;
      if (!actorder) return out;
    } else if (gptq && key == "sequential_targets") {
      reader.warn(at, "sequential_targets has no effect: presso always works block by block");
    }  // offload_hessians and the base keys change nothing here
  }

  // mixin.py resolve_quantization_config: scheme and config_groups exclude each other; with
  // neither, the default scheme has no weights and nothing is quantized.
  if (is_set(scheme) && is_set(config_groups)) {
    reader.add(scheme_mark, "give either `scheme` or `config_groups`, not both");
    return out;
  }
  if (!is_set(scheme) && !is_set(config_groups)) {
    reader.add(mark, "needs `scheme` or `config_groups` (without either it quantizes nothing)");
    return out;
  }
  std::vector<ParsedGroup> groups;
  auto keep = [&](std::optional<ParsedGroup> group) {
    if (group) groups.push_back(std::move(*group));
  };
  if (is_set(scheme) && scheme.IsScalar()) {
    keep(reader.read_preset(scheme.Scalar(), scheme_mark, targets, targets_mark));
  } else if (is_set(scheme) && scheme.IsMap()) {
    // `scheme: {W4A16: [Linear]}`: each key a preset, each value its targets.
    for (const auto& entry : scheme) {
      keep(reader.read_preset(entry.first.Scalar(), entry.first.Mark(), entry.second,
                              entry.first.Mark()));
    }
  } else if (is_set(scheme)) {
    reader.add(scheme_mark,
               "scheme: expected a preset name or a mapping of preset -> targets, "
               "got " +
                   describe_node(scheme));
  } else if (!config_groups.IsMap()) {
    reader.add(groups_mark,
               "config_groups: expected a mapping of groups, got " + describe_node(config_groups));
  } else {
    for (const auto& entry : config_groups) {
      keep(reader.read_config_group(entry.first.Scalar(), entry.second, entry.first.Mark()));
    }
  }
  if (problems.size() != before) return out;
  // GPTQModifier defaults, explicit so that they hold whatever the registered pass's are.
  auto solver_has = [&](const char* key) {
    return std::any_of(solver.begin(), solver.end(),
                       [&](const RawOption& option) { return option.key == key; });
  };
  if (!solver_has("damp"))
    solver.push_back(RawOption{"damp", "dampening_frac", YAML::Node(0.01), mark});
  if (!solver_has("block_size")) {
    solver.push_back(RawOption{"block_size", "block_size", YAML::Node(128), mark});
  }

  std::optional<RawOption> mse = observer_dict ? observer_dict : weight_observer;
  for (auto& parsed : groups) {
    WeightGroup& group = parsed.group;
    if (mse) {
      for (auto& option : group.quant) {
        if (option.key == "mse") option = *mse;
      }
    }
    if (gptq) {
      // GPTQModifier.resolve_quantization_config: an unset modifier actorder defaults to static
      // (= weight) unless the scheme sets one; a set one must agree with the scheme's.
      std::string order = parsed.actorder.empty() ? "weight" : parsed.actorder;
      if (actorder) {
        if (!parsed.actorder.empty() && *actorder != parsed.actorder) {
          reader.add(actorder_mark,
                     fmt::format("actorder '{}' differs from the config group's '{}'; unset one "
                                 "of them",
                                 actorder->empty() ? "null" : *actorder, parsed.actorder));
          continue;
        }
        order = *actorder;
      }
      if (order == "group" && parsed.group_size && *parsed.group_size < 1) {
        reader.warn(actorder_mark,
                    "actorder group with per-channel scales falls back to no "
                    "activation ordering, as in llm-compressor");
        order.clear();
      }
      // Both keys are written out, since our defaults are the original GPTQ's (act_order and
      // static_groups false). llm-compressor's observer finds every grid before the sweep
      // (gptq_quantize.py, quantize_weight): None -> act_order false, static groups; weight ->
      // act_order true, static groups (no g_idx). For group it finds the grids of the permuted
      // weight before the sweep and saves g_idx; we map it to act_order with the original's
      // dynamic groups, which also saves g_idx but finds each grid from the updated weights.
      group.solver = solver;
      group.solver.push_back(
          RawOption{"act_order", "actorder", YAML::Node(!order.empty()), actorder_mark});
      group.solver.push_back(
          RawOption{"static_groups", "actorder", YAML::Node(order != "group"), actorder_mark});
      // llm-compressor calibrates all linears of a block on one forward pass, then quantizes.
      group.solver.push_back(RawOption{"true_sequential", "(a block calibrated at once)",
                                       YAML::Node(false), reader.mark()});
    }
    out.groups.push_back(std::move(group));
  }
  if (problems.size() != before) out.groups.clear();
  return out;
}

}  // namespace presso::recipe_internal

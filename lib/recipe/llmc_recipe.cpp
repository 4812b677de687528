// llm-compressor recipes (`*_stage` / `*_modifiers` / modifier: args) translated into our passes.
// Each fact below cites the upstream file it was read from (llm-compressor main of 2026-08,
// compressed-tensors 0.18.0). Like upstream, where every modifier is a pydantic model with
// extra="forbid" (src/llmcompressor/modifiers/modifier.py), an unknown key is an error; keys we
// know but cannot honour (activation or KV-cache quantization, float or per-tensor grids) are
// errors that say so; keys that change nothing for a block-by-block, weight-only tool are
// accepted, with a warning where a user might expect an effect.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <optional>

#include "lib/recipe/llmc_weights.h"
#include "lib/recipe/raw_recipe.h"

namespace presso::recipe_internal {
namespace {

// Modifier base fields (modifiers/modifier.py); they schedule training steps and name groups.
const std::vector<std::string> kBaseKeys = {"index", "group", "start", "end", "update"};
// QuantizationMixin fields (modifiers/quantization/quantization/mixin.py).
const std::vector<std::string> kQuantKeys = {"config_groups",   "targets",
                                             "ignore",          "scheme",
                                             "kv_cache_scheme", "weight_observer",
                                             "input_observer",  "output_observer",
                                             "observer",        "bypass_divisibility_checks"};
// GPTQModifier fields (modifiers/gptq/base.py); sequential_targets was removed upstream in
// 2026-04 (#1559) and is still accepted here for older recipes.
const std::vector<std::string> kGptqKeys = {"block_size", "dampening_frac", "actorder",
                                            "offload_hessians", "sequential_targets"};
// AWQModifier fields (modifiers/transform/awq/base.py), and sequential_targets of its older form.
const std::vector<std::string> kAwqKeys = {"mappings", "offload_device", "duo_scaling", "n_grid",
                                           "sequential_targets"};
// SparsityModifierBase fields (modifiers/pruning/sparsegpt/sgpt_base.py).
const std::vector<std::string> kSparsityKeys = {
    "sparsity",  "sparsity_profile",  "mask_structure", "owl_m",
    "owl_lmbda", "sequential_update", "targets",        "ignore"};
// SparseGPTModifier's own fields (modifiers/pruning/sparsegpt/base.py).
const std::vector<std::string> kSparseGptKeys = {"block_size", "dampening_frac",
                                                 "preserve_sparsity_mask", "offload_hessians"};

// Modifier name -> the pass it becomes.
const std::map<std::string, std::string> kModifierPasses = {{"QuantizationModifier", "rtn"},
                                                            {"GPTQModifier", "gptq"},
                                                            {"AWQModifier", "awq"},
                                                            {"SparseGPTModifier", "sparsegpt"},
                                                            {"WandaPruningModifier", "wanda"}};

using Args = std::vector<std::pair<YAML::Node, YAML::Node>>;

struct Modifier {
  std::string name;
  YAML::Mark mark;
  Args args;
};

// One modifier after translation. Quantizers keep their weight groups so that an AWQModifier
// before them can take its grid from them.
struct Translated {
  std::string name;
  YAML::Mark mark;
  bool is_awq = false;
  bool is_quantizer = false;  // a QuantizationModifier or GPTQModifier (groups empty on errors)
  std::vector<RawOption> awq_options;  // AWQ only
  std::vector<WeightGroup> groups;     // quantizers only
  std::optional<RawOption> ignore;     // quantizers only
  std::vector<RawPass> passes;         // quantizers and pruners
};

bool contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

class Translator {
 public:
  Translator(const std::vector<PassSchema>& available, ProblemList& problems,
             std::vector<std::string>& warnings)
      : problems_(problems), warnings_(warnings) {
    for (const auto& schema : available) passes_.push_back(schema.name);
  }

  std::vector<RawPass> translate(const YAML::Node& root) {
    std::vector<Modifier> modifiers = read_structure(root);
    std::vector<Translated> translated;
    for (const auto& modifier : modifiers) translate_modifier(modifier, translated);
    return emit(translated);
  }

 private:
  void add(const YAML::Mark& mark, const std::string& label, const std::string& text) {
    problems_.add(mark, label, text);
  }
  void warn(const YAML::Mark& mark, const std::string& label, const std::string& text) {
    warnings_.push_back(fmt::format("{}:{}: {}: {}", problems_.file(), mark.line + 1, label, text));
  }
  // Stages, groups and modifiers, in file order (Recipe.from_dict, src/llmcompressor/recipe/
  // recipe.py, walks them the same way; it silently skips keys without the suffixes, which we
  // report instead).
  std::vector<Modifier> read_structure(const YAML::Node& root) {
    std::vector<Modifier> modifiers;
    for (const auto& stage : root) {
      std::string stage_key = stage.first.Scalar();
      if (!ends_with(stage_key, "_stage")) {
        add(stage.first.Mark(), "",
            fmt::format("unknown top-level key '{}' (an llm-compressor recipe holds `*_stage` "
                        "keys)",
                        stage_key));
        continue;
      }
      if (!stage.second.IsMap()) {
        add(stage.second.Mark(), stage_key,
            "expected a mapping of `*_modifiers` groups, got " + describe_node(stage.second));
        continue;
      }
      for (const auto& group : stage.second) {
        std::string group_key = group.first.Scalar();
        if (!ends_with(group_key, "_modifiers")) {
          add(group.first.Mark(), stage_key,
              fmt::format("unknown key '{}' (a stage holds `*_modifiers` groups)", group_key));
          continue;
        }
        if (!group.second.IsMap()) {
          add(group.second.Mark(), group_key,
              "expected a mapping of modifier names, got " + describe_node(group.second));
          continue;
        }
        for (const auto& entry : group.second) {
          Modifier modifier{entry.first.Scalar(), entry.first.Mark(), {}};
          if (entry.second.IsMap()) {
            for (const auto& arg : entry.second) modifier.args.emplace_back(arg.first, arg.second);
          } else if (!entry.second.IsNull()) {
            add(entry.second.Mark(), modifier.name,
                "expected a mapping of arguments, got " + describe_node(entry.second));
            continue;
          }
          modifiers.push_back(std::move(modifier));
        }
      }
    }
    return modifiers;
  }

  bool available(const std::string& pass) const { return contains(passes_, pass); }

  void translate_modifier(const Modifier& modifier, std::vector<Translated>& out) {
    auto known = kModifierPasses.find(modifier.name);
    if (known == kModifierPasses.end() || !available(known->second)) {
      std::vector<std::string> names;
      for (const auto& [name, pass] : kModifierPasses) {
        if (available(pass)) names.push_back(name);
      }
      add(modifier.mark, "",
          fmt::format("unknown modifier '{}'{} (available: {})", modifier.name,
                      did_you_mean(modifier.name, names), fmt::join(names, ", ")));
      return;
    }
    if (!check_keys(modifier)) return;
    const std::string& pass = known->second;
    if (pass == "awq") {
      translate_awq(modifier, out);
    } else if (pass == "rtn" || pass == "gptq") {
      out.push_back(translate_quantizer(modifier, pass));
    } else {
      out.push_back(translate_pruner(modifier, pass));
    }
  }

  // Unknown and repeated keys; true when there are none.
  bool check_keys(const Modifier& modifier) {
    std::vector<std::string> allowed = kBaseKeys;
    auto append = [&](const std::vector<std::string>& keys) {
      allowed.insert(allowed.end(), keys.begin(), keys.end());
    };
    if (modifier.name == "GPTQModifier" || modifier.name == "QuantizationModifier") {
      append(kQuantKeys);
      if (modifier.name == "GPTQModifier") append(kGptqKeys);
    } else if (modifier.name == "AWQModifier") {
      append(kAwqKeys);
      append(kQuantKeys);  // its older form, split below
    } else {
      append(kSparsityKeys);
      if (modifier.name == "SparseGPTModifier") append(kSparseGptKeys);
    }
    bool ok = true;
    std::map<std::string, int> seen;
    for (const auto& [key_node, value] : modifier.args) {
      std::string key = key_node.Scalar();
      if (!contains(allowed, key)) {
        add(key_node.Mark(), modifier.name,
            fmt::format("unknown key '{}'{} (llm-compressor forbids extra inputs)", key,
                        did_you_mean(key, allowed)));
        ok = false;
      } else if (seen.count(key)) {
        add(key_node.Mark(), modifier.name,
            fmt::format("'{}' is given twice (first on line {})", key, seen[key]));
        ok = false;
      }
      seen.emplace(key, key_node.Mark().line + 1);
    }
    return ok;
  }

  // The current AWQModifier only scales; its grid comes from the next quantizing modifier
  // (modifiers/transform/awq/base.py). Its older form also quantized, taking QuantizationMixin
  // keys; the compatibility shim (modifiers/awq/__init__.py) splits such an AWQModifier into the
  // scaling transform followed by a QuantizationModifier, and so do we.
  void translate_awq(const Modifier& modifier, std::vector<Translated>& out) {
    Translated awq{modifier.name, modifier.mark, true, false, {}, {}, std::nullopt, {}};
    Modifier legacy{modifier.name, modifier.mark, {}};
    for (const auto& [key_node, value] : modifier.args) {
      std::string key = key_node.Scalar();
      YAML::Mark mark = key_node.Mark();
      if (contains(kQuantKeys, key)) {
        legacy.args.emplace_back(key_node, value);
      } else if (key == "duo_scaling" || key == "n_grid") {
        awq.awq_options.push_back(RawOption{key, key, value, mark});
      } else if (key == "mappings") {
        translate_mappings(value, mark, modifier.name, awq.awq_options);
      } else if (key == "sequential_targets") {
        warn(mark, modifier.name,
             "sequential_targets has no effect: presso always works block by "
             "block");
      }  // offload_device and the base keys: no effect on a block-by-block CPU/GPU run
    }
    // llm-compressor's AWQ has no clipping search (DESIGN.md); keep its behaviour.
    awq.awq_options.push_back(RawOption{"clip", "clip", YAML::Node(false), modifier.mark});
    out.push_back(std::move(awq));
    if (!legacy.args.empty()) {
      if (!available("rtn")) {
        add(modifier.mark, modifier.name,
            "its quantization keys need the rtn pass, which is not registered");
        return;
      }
      warn(modifier.mark, modifier.name,
           "older AWQModifier with quantization keys: read as AWQModifier followed by a "
           "QuantizationModifier, as llm-compressor's compatibility shim does");
      out.push_back(translate_quantizer(legacy, "rtn"));
    }
  }

  void translate_mappings(const YAML::Node& value, const YAML::Mark& mark, const std::string& label,
                          std::vector<RawOption>& options) {
    if (!value || value.IsNull()) return;  // None: the model family's mappings
    // AWQMapping (modifiers/transform/awq/mappings.py) also has activation_hook_target, for
    // parallel attention/MLP blocks; presso's families have none, so it must stay unset.
    YAML::Node ours(YAML::NodeType::Sequence);
    if (value.IsSequence()) {
      for (const auto& item : value) {
        if (!item.IsMap()) {
          ours.push_back(item);
          continue;
        }
        YAML::Node mapping(YAML::NodeType::Map);
        for (const auto& field : item) {
          std::string key = field.first.Scalar();
          if (key == "activation_hook_target") {
            if (!field.second.IsNull()) {
              add(field.first.Mark(), label,
                  "mappings: activation_hook_target is not supported (presso's model families "
                  "hook each mapping's first balance layer)");
            }
            continue;
          }
          mapping[key] = field.second;
        }
        ours.push_back(mapping);
      }
    } else {
      ours = value;
    }
    options.push_back(RawOption{"mappings", "mappings", ours, mark});
  }

  Translated translate_quantizer(const Modifier& modifier, const std::string& pass) {
    Translated result{modifier.name, modifier.mark, false, true, {}, {}, std::nullopt, {}};
    QuantizerArgs args = read_quantizer_args(modifier.args, modifier.mark, modifier.name,
                                             pass == "gptq", problems_, warnings_);
    result.groups = std::move(args.groups);
    result.ignore = args.ignore;
    for (auto& group : result.groups) {
      RawPass raw{pass, modifier.name, modifier.mark, {}};
      raw.options.push_back(group.targets);
      if (args.ignore) raw.options.push_back(*args.ignore);
      raw.options.insert(raw.options.end(), group.quant.begin(), group.quant.end());
      raw.options.insert(raw.options.end(), group.solver.begin(), group.solver.end());
      result.passes.push_back(std::move(raw));
    }
    return result;
  }

  Translated translate_pruner(const Modifier& modifier, const std::string& pass) {
    Translated result{modifier.name, modifier.mark, false, false, {}, {}, std::nullopt, {}};
    RawPass raw{pass, modifier.name, modifier.mark, {}};
    for (const auto& [key_node, value] : modifier.args) {
      std::string key = key_node.Scalar();
      YAML::Mark mark = key_node.Mark();
      bool set = value && !value.IsNull();
      if (key == "sparsity") {
        if (value.IsSequence() || value.IsMap()) {
          add(mark, modifier.name, "sparsity: per-layer sparsity lists are not supported");
        } else if (set) {
          raw.options.push_back(RawOption{key, key, value, mark});
        }
      } else if (key == "sparsity_profile" || key == "owl_m" || key == "owl_lmbda") {
        if (set) add(mark, modifier.name, key + ": OWL layer-wise sparsity is not supported");
      } else if (key == "preserve_sparsity_mask") {
        bool flag = false;
        if (set && (!YAML::convert<bool>::decode(value, flag) || flag)) {
          add(mark, modifier.name,
              "preserve_sparsity_mask: only false is supported (presso "
              "prunes dense checkpoints)");
        }
      } else if (key == "dampening_frac") {
        // None turns dampening off (modifiers/pruning/sparsegpt/base.py: float | None).
        raw.options.push_back(RawOption{"damp", key, set ? value : YAML::Node(0.0), mark});
      } else if (key == "mask_structure" || key == "targets" || key == "ignore" ||
                 key == "block_size") {
        raw.options.push_back(RawOption{key, key, value, mark});
      }  // sequential_update (deprecated, forced true upstream), offload_hessians, base keys
    }
    if (modifier.name == "SparseGPTModifier") {
      // Upstream defaults (modifiers/pruning/sparsegpt/base.py), explicit so that they hold
      // whatever the registered pass's own defaults are.
      add_default(raw, "damp", YAML::Node(0.01));
      add_default(raw, "block_size", YAML::Node(128));
    }
    add_default(raw, "mask_structure", YAML::Node("0:0"));
    result.passes.push_back(std::move(raw));
    return result;
  }

  static void add_default(RawPass& raw, const std::string& key, const YAML::Node& value) {
    for (const auto& option : raw.options) {
      if (option.key == key) return;
    }
    raw.options.push_back(RawOption{key, key, value, raw.mark});
  }

  // Passes in modifier order; an AWQModifier becomes one awq entry per weight group of the next
  // quantizer (Recipe.validate_model_after in recipe/recipe.py rejects AWQ without one).
  std::vector<RawPass> emit(const std::vector<Translated>& translated) {
    std::vector<RawPass> passes;
    for (size_t i = 0; i < translated.size(); ++i) {
      const Translated& item = translated[i];
      if (!item.is_awq) {
        passes.insert(passes.end(), item.passes.begin(), item.passes.end());
        continue;
      }
      auto next = std::find_if(translated.begin() + i + 1, translated.end(),
                               [](const Translated& t) { return t.is_quantizer; });
      if (next == translated.end()) {
        add(item.mark, item.name,
            "needs a later QuantizationModifier or GPTQModifier: AWQ only scales, and takes its "
            "grid from the quantizer that follows it");
        continue;
      }
      for (const auto& group : next->groups) {
        RawPass raw{"awq", item.name, item.mark, {}};
        raw.options.push_back(group.targets);
        if (next->ignore) raw.options.push_back(*next->ignore);
        raw.options.insert(raw.options.end(), group.quant.begin(), group.quant.end());
        raw.options.insert(raw.options.end(), item.awq_options.begin(), item.awq_options.end());
        passes.push_back(std::move(raw));
      }
    }
    return passes;
  }

  static bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  ProblemList& problems_;
  std::vector<std::string>& warnings_;
  std::vector<std::string> passes_;
};

}  // namespace

std::vector<RawPass> translate_llmc_recipe(const YAML::Node& root,
                                           const std::vector<PassSchema>& available,
                                           ProblemList& problems,
                                           std::vector<std::string>& warnings) {
  return Translator(available, problems, warnings).translate(root);
}

}  // namespace presso::recipe_internal

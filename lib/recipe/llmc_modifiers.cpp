// llm-compressor's modifiers translated into our pass options. Each fact below cites the upstream
// file it was read from (llm-compressor main of 2026-08, compressed-tensors 0.18.0). Like
// upstream, where every modifier is a pydantic model with extra="forbid"
// (src/llmcompressor/modifiers/modifier.py), an unknown key is an error; keys we know but cannot
// honour (activation or KV-cache quantization, float or per-tensor grids, OWL outside Wanda) are
// errors that say so; keys that change nothing for a block-by-block, weight-only, one-shot tool
// are accepted, with a warning where a user might expect an effect.
#include "lib/recipe/llmc_modifiers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>

#include "lib/common/text.h"
#include "lib/recipe/llmc_modifier.h"
#include "lib/recipe/llmc_weights.h"

namespace presso {
namespace {

using recipe_internal::LlmcModifier;
using recipe_internal::ModifierArgs;
using recipe_internal::ModifierContext;
using recipe_internal::RawOption;

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
// MagnitudePruningModifier fields (modifiers/pruning/magnitude/base.py): targets, init_sparsity
// and final_sparsity are required (no default); there is no `ignore`. Its mixin
// LayerParamMasking (modifiers/pruning/utils/pytorch/layer_mask.py) adds no recipe key.
const std::vector<std::string> kMagnitudeKeys = {
    "targets",        "init_sparsity",  "final_sparsity", "update_scheduler",
    "scheduler_args", "mask_structure", "leave_enabled",  "apply_globally"};

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

bool is_set(const YAML::Node& node) { return node && !node.IsNull(); }

void add_default(std::vector<RawOption>& options, const std::string& key, const std::string& shown,
                 const YAML::Node& value, const YAML::Mark& mark) {
  for (const auto& option : options) {
    if (option.key == key) return;
  }
  options.push_back(RawOption{key, shown, value, mark});
}

void translate_quantizer(ModifierContext& context, bool gptq) {
  const LlmcModifier& modifier = context.modifier;
  recipe_internal::QuantizerArgs args = recipe_internal::read_quantizer_args(
      modifier.args, modifier.mark, modifier.label, gptq, context.problems, context.warnings);
  context.result.groups = std::move(args.groups);
  context.result.ignore = std::move(args.ignore);
}

void translate_mappings(ModifierContext& context, const YAML::Node& value, const YAML::Mark& mark) {
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
            context.add(field.first.Mark(),
                        "mappings: activation_hook_target is not supported (presso's model "
                        "families hook each mapping's first balance layer)");
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
  context.result.options.push_back(RawOption{"mappings", "mappings", ours, mark});
}

// The current AWQModifier only scales; its grid comes from the next quantizing modifier
// (modifiers/transform/awq/base.py). Its older form also quantized, taking QuantizationMixin
// keys; the compatibility shim (modifiers/awq/__init__.py) splits such an AWQModifier into the
// scaling transform followed by a QuantizationModifier, and so do we.
void translate_awq(ModifierContext& context) {
  const LlmcModifier& modifier = context.modifier;
  auto& options = context.result.options;
  ModifierArgs legacy;
  for (const auto& [key_node, value] : modifier.args) {
    std::string key = key_node.Scalar();
    YAML::Mark mark = key_node.Mark();
    if (contains(kQuantKeys, key)) {
      legacy.emplace_back(key_node, value);
    } else if (key == "duo_scaling" || key == "n_grid") {
      options.push_back(RawOption{key, key, value, mark});
    } else if (key == "mappings") {
      translate_mappings(context, value, mark);
    } else if (key == "sequential_targets") {
      context.warn(mark, "sequential_targets has no effect: presso always works block by block");
    }  // offload_device and the base keys: no effect on a block-by-block CPU/GPU run
  }
  // llm-compressor's AWQ has no clipping search (DESIGN.md); keep its behaviour.
  options.push_back(RawOption{"clip", "clip", YAML::Node(false), modifier.mark});
  if (!legacy.empty()) {
    context.warn(modifier.mark,
                 "older AWQModifier with quantization keys: read as AWQModifier followed by a "
                 "QuantizationModifier, as llm-compressor's compatibility shim does");
    context.result.follow_up = std::make_pair(std::string("QuantizationModifier"), legacy);
  }
}

// Digits, a colon, digits. Not std::regex: its matcher recurses once per character, and a
// mask_structure of 200k digits crashed presso.
bool is_digits_colon_digits(const std::string& text) {
  const auto digits = [](std::string_view part) {
    return !part.empty() &&
           std::all_of(part.begin(), part.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  const size_t colon = text.find(':');
  return colon != std::string::npos && digits(std::string_view(text).substr(0, colon)) &&
         digits(std::string_view(text).substr(colon + 1));
}

// SparsityModifierBase's mask_structure: "N:M", split into integers by _split_mask_structure
// (modifiers/pruning/sparsegpt/sgpt_base.py); "0:0" (the default) is unstructured. N:M means N
// zeros in every M consecutive columns (sgpt_sparsify.py: topk(prune_n, largest=False) per
// prune_m columns), which is our pattern "N:M".
std::optional<RawOption> read_nm_mask_structure(const ModifierContext& context,
                                                const YAML::Node& value, const YAML::Mark& mark) {
  if (!value.IsScalar()) return RawOption{"pattern", "mask_structure", value, mark};
  static const std::regex kForm("([0-9]{1,4}):([0-9]{1,4})");
  const std::string& text = value.Scalar();
  std::smatch match;
  if (!std::regex_match(text, match, kForm)) {
    context.add(mark, fmt::format("mask_structure: '{}' is not of the form \"N:M\" (\"0:0\" = "
                                  "unstructured)",
                                  abbreviate(text)));
    return std::nullopt;
  }
  int n = std::stoi(match[1]), m = std::stoi(match[2]);
  if (n == 0 && m == 0) {
    return RawOption{"pattern", "mask_structure", YAML::Node("unstructured"), mark};
  }
  if (n <= 0 || n >= m) {
    context.add(mark, fmt::format("mask_structure: '{}' needs 0 < N < M (or \"0:0\" for "
                                  "unstructured)",
                                  text));
    return std::nullopt;
  }
  return RawOption{"pattern", "mask_structure", YAML::Node(fmt::format("{}:{}", n, m)), mark};
}

// OWL's keys of SparsityModifierBase (sgpt_base.py): sparsity_profile ("owl", any case),
// owl_m and owl_lmbda, all three or none (its validate_model_after), become the wanda pass's
// sparsity_profile, owl_threshold_m and owl_lambda. Upstream's OWL path itself fails after
// computing the sparsities (docs/benchmarks.md, Wanda); we follow its math.
void translate_owl(ModifierContext& context, const std::vector<RawOption>& given) {
  if (given.empty()) return;
  if (given.size() < 3) {
    context.add(given.front().mark,
                "OWL needs all of sparsity_profile: owl, owl_m and owl_lmbda, or none of them "
                "(as in llm-compressor)");
    return;
  }
  for (const RawOption& option : given) {
    if (option.key == "sparsity_profile") {
      std::string profile = option.value.IsScalar() ? option.value.Scalar() : "";
      std::transform(profile.begin(), profile.end(), profile.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (profile != "owl") {
        context.add(option.mark,
                    "sparsity_profile: '" + profile + "' is not a profile; the only one is owl");
        continue;
      }
      context.result.options.push_back(
          RawOption{"sparsity_profile", option.key, YAML::Node("owl"), option.mark});
    } else {
      const std::string ours = option.key == "owl_m" ? "owl_threshold_m" : "owl_lambda";
      context.result.options.push_back(RawOption{ours, option.key, option.value, option.mark});
    }
  }
}

// SparseGPTModifier and WandaPruningModifier, both SparsityModifierBase.
void translate_sparsity_modifier(ModifierContext& context, bool sparsegpt) {
  const LlmcModifier& modifier = context.modifier;
  auto& options = context.result.options;
  std::vector<RawOption> owl;  // sparsity_profile, owl_m, owl_lmbda as given (Wanda only)
  for (const auto& [key_node, value] : modifier.args) {
    std::string key = key_node.Scalar();
    YAML::Mark mark = key_node.Mark();
    bool set = is_set(value);
    if (key == "sparsity") {
      if (value.IsSequence() || value.IsMap()) {
        context.add(mark, "sparsity: per-layer sparsity lists are not supported");
      } else if (set) {
        options.push_back(RawOption{key, key, value, mark});
      }
    } else if (key == "sparsity_profile" || key == "owl_m" || key == "owl_lmbda") {
      if (set && sparsegpt) {
        context.add(mark, key +
                              ": OWL layer-wise sparsity is supported for WandaPruningModifier "
                              "only (presso's sparsegpt pass has none)");
      } else if (set) {
        owl.push_back(RawOption{key, key, value, mark});
      }
    } else if (key == "preserve_sparsity_mask") {
      bool flag = false;
      if (set && (!YAML::convert<bool>::decode(value, flag) || flag)) {
        context.add(mark,
                    "preserve_sparsity_mask: only false is supported (presso prunes dense "
                    "checkpoints)");
      }
    } else if (key == "dampening_frac") {
      // None turns dampening off (modifiers/pruning/sparsegpt/base.py: float | None).
      options.push_back(RawOption{"damp", key, set ? value : YAML::Node(0.0), mark});
    } else if (key == "mask_structure") {
      if (auto pattern = read_nm_mask_structure(context, value, mark)) options.push_back(*pattern);
    } else if (key == "targets" || key == "ignore" || key == "block_size") {
      options.push_back(RawOption{key, key, value, mark});
    }  // sequential_update (deprecated, forced true upstream), offload_hessians, base keys
  }
  // Upstream ignores `sparsity` with an N:M mask (sgpt_base.py); ours must then be N/M or absent.
  auto pattern = std::find_if(options.begin(), options.end(),
                              [](const RawOption& o) { return o.key == "pattern"; });
  auto sparsity = std::find_if(options.begin(), options.end(),
                               [](const RawOption& o) { return o.key == "sparsity"; });
  double given = 0;
  if (pattern != options.end() && pattern->value.IsScalar() &&
      pattern->value.Scalar() != "unstructured" && sparsity != options.end() &&
      YAML::convert<double>::decode(sparsity->value, given)) {
    const std::string& nm = pattern->value.Scalar();
    int n = std::stoi(nm), m = std::stoi(nm.substr(nm.find(':') + 1));
    if (std::abs(given - static_cast<double>(n) / m) > 1e-9) {
      context.warn(sparsity->mark,
                   fmt::format("sparsity {} has no effect with mask_structure {}, which prunes {} "
                               "of every {}, as in llm-compressor",
                               sparsity->value.Scalar(), nm, n, m));
      options.erase(sparsity);
    }
  }
  if (sparsegpt) {
    // Upstream defaults (modifiers/pruning/sparsegpt/base.py), explicit so that they hold
    // whatever the registered pass's own defaults are.
    add_default(options, "damp", "damp", YAML::Node(0.01), modifier.mark);
    add_default(options, "block_size", "block_size", YAML::Node(128), modifier.mark);
  } else {
    translate_owl(context, owl);
    // Upstream calibrates a whole decoder layer, then prunes its linears (sequential_update,
    // forced true, means layer by layer): no statistics gathered again within a block.
    add_default(options, "true_sequential", "sequential_update", YAML::Node(false), modifier.mark);
  }
  add_default(options, "pattern", "mask_structure", YAML::Node("unstructured"), modifier.mark);
}

// MagnitudePruningModifier's mask_structure goes through PruningMaskFactory
// (modifiers/pruning/utils/pytorch/mask_factory.py): "unstructured" (the default), "channel" and
// "filter" (4-D convolution weights only) and "block_R,C"; anything else, N:M included, is
// "Invalid mask_structure" there.
std::optional<RawOption> read_magnitude_mask_structure(const ModifierContext& context,
                                                       const YAML::Node& value,
                                                       const YAML::Mark& mark) {
  if (!value.IsScalar()) return RawOption{"pattern", "mask_structure", value, mark};
  const std::string& text = value.Scalar();
  if (text == "unstructured") {
    return RawOption{"pattern", "mask_structure", YAML::Node("unstructured"), mark};
  } else if (text == "channel" || text == "filter" || text.rfind("block_", 0) == 0) {
    context.add(mark, fmt::format("mask_structure: '{}' is not supported; presso prunes single "
                                  "weights (unstructured) or N:M",
                                  abbreviate(text)));
  } else if (is_digits_colon_digits(text)) {
    context.add(mark, fmt::format("mask_structure: '{}': llm-compressor's MagnitudePruningModifier "
                                  "has no N:M masks (SparseGPTModifier and WandaPruningModifier "
                                  "do; presso's own magnitude pass takes pattern: \"{}\")",
                                  abbreviate(text), abbreviate(text)));
  } else {
    std::vector<std::string> structures = {"unstructured", "channel", "filter"};
    context.add(mark,
                fmt::format("mask_structure: '{}' is not one of: unstructured, channel, "
                            "filter, block_R,C{}",
                            abbreviate(text), recipe_internal::did_you_mean(text, structures)));
  }
  return std::nullopt;
}

// MagnitudePruningModifier (modifiers/pruning/magnitude/base.py) raises the sparsity of each
// targeted layer from init_sparsity to final_sparsity on a schedule over training steps
// (start, end, update, update_scheduler with scheduler_args; modifiers/pruning/helpers.py), each
// layer's mask the top |w| of the layer (unstructured_pruning, mask_factory.py). One-shot there
// is no schedule: we prune each layer once, to final_sparsity.
void translate_magnitude(ModifierContext& context) {
  const LlmcModifier& modifier = context.modifier;
  auto& options = context.result.options;
  std::vector<std::string> schedule;  // schedule keys given, for the warning
  bool has_targets = false, has_init = false, has_final = false;
  for (const auto& [key_node, value] : modifier.args) {
    std::string key = key_node.Scalar();
    YAML::Mark mark = key_node.Mark();
    bool set = is_set(value);
    if (key == "targets") {
      has_targets = true;
      options.push_back(RawOption{"targets", key, value, mark});
    } else if (key == "final_sparsity") {
      has_final = true;
      options.push_back(RawOption{"sparsity", key, value, mark});
    } else if (key == "init_sparsity") {
      has_init = true;
      double number = 0;
      if (!value.IsScalar() || !YAML::convert<double>::decode(value, number)) {
        context.add(
            mark, "init_sparsity: expected a number, got " + recipe_internal::describe_node(value));
      }
      schedule.push_back(key);
    } else if (key == "mask_structure") {
      if (auto pattern = read_magnitude_mask_structure(context, value, mark)) {
        options.push_back(*pattern);
      }
    } else if (key == "apply_globally") {
      bool flag = false;
      if (set && (!YAML::convert<bool>::decode(value, flag) || flag)) {
        // on_initialize raises NotImplementedError("global pruning not implemented yet ...").
        context.add(mark,
                    "apply_globally: only false is supported, as in llm-compressor (presso's own "
                    "magnitude pass prunes globally with scope: global)");
      }
    } else if (key == "leave_enabled") {
      // Deprecated upstream: a field validator warns and sets it to false.
      bool flag = false;
      if (set && (!YAML::convert<bool>::decode(value, flag) || flag)) schedule.push_back(key);
    } else if (set && key != "index" && key != "group") {
      schedule.push_back(key);  // update_scheduler, scheduler_args and the base start, end, update
    }
  }
  for (const auto& [present, key] :
       {std::make_pair(has_targets, "targets"), std::make_pair(has_init, "init_sparsity"),
        std::make_pair(has_final, "final_sparsity")}) {
    if (!present) context.add(modifier.mark, fmt::format("missing required key '{}'", key));
  }
  bool started = std::any_of(modifier.args.begin(), modifier.args.end(), [](const auto& arg) {
    return arg.first.Scalar() == "start" && is_set(arg.second);
  });
  if (!started) {
    // Modifier.should_start (modifiers/modifier.py) is false while start is None.
    context.warn(modifier.mark,
                 "start is not set, so llm-compressor never starts this modifier and prunes "
                 "nothing; presso prunes to final_sparsity");
  }
  if (!schedule.empty()) {
    context.warn(modifier.mark, fmt::format("{}: presso prunes once, to final_sparsity; the "
                                            "pruning schedule has no effect",
                                            fmt::join(schedule, ", ")));
  }
  add_default(options, "pattern", "mask_structure", YAML::Node("unstructured"), modifier.mark);
  add_default(options, "scope", "(each layer pruned to final_sparsity)", YAML::Node("layer"),
              modifier.mark);
}

ModifierTranslation make_translation(std::string modifier, std::vector<std::string> keys,
                                     WeightGrid grid,
                                     std::function<void(ModifierContext&)> translate) {
  return ModifierTranslation{std::move(modifier), std::move(keys), grid, std::move(translate)};
}

}  // namespace

ModifierTranslation quantization_modifier_translation() {
  return make_translation("QuantizationModifier", kQuantKeys, WeightGrid::kOwn,
                          [](ModifierContext& context) { translate_quantizer(context, false); });
}

ModifierTranslation gptq_modifier_translation() {
  return make_translation("GPTQModifier", concat(kQuantKeys, kGptqKeys), WeightGrid::kOwn,
                          [](ModifierContext& context) { translate_quantizer(context, true); });
}

ModifierTranslation awq_modifier_translation() {
  // kQuantKeys: its older form, split off by translate_awq.
  return make_translation("AWQModifier", concat(kAwqKeys, kQuantKeys),
                          WeightGrid::kFromNextQuantizer, translate_awq);
}

ModifierTranslation sparsegpt_modifier_translation() {
  return make_translation(
      "SparseGPTModifier", concat(kSparsityKeys, kSparseGptKeys), WeightGrid::kNone,
      [](ModifierContext& context) { translate_sparsity_modifier(context, true); });
}

ModifierTranslation wanda_modifier_translation() {
  return make_translation(
      "WandaPruningModifier", kSparsityKeys, WeightGrid::kNone,
      [](ModifierContext& context) { translate_sparsity_modifier(context, false); });
}

ModifierTranslation magnitude_modifier_translation() {
  return make_translation("MagnitudePruningModifier", kMagnitudeKeys, WeightGrid::kNone,
                          translate_magnitude);
}

}  // namespace presso

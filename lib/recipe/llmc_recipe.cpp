// llm-compressor recipes (`*_stage` / `*_modifiers` / modifier: args) translated into our passes.
// The translator knows no modifier by name: each pass's schema lists the modifiers that become it
// (PassSchema::modifiers; the translations of upstream's modifiers are in llmc_modifiers.cpp).
// Here: the recipe's structure, unknown and repeated keys, and how translated modifiers become
// entries, including the one rule across modifiers, a grid taken from the next quantizer.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "lib/recipe/llmc_modifier.h"
#include "lib/recipe/raw_recipe.h"

namespace presso::recipe_internal {

void ModifierContext::warn(const YAML::Mark& mark, const std::string& text) const {
  warnings.push_back(
      fmt::format("{}:{}: {}: {}", problems.file(), mark.line + 1, modifier.label, text));
}

namespace {

// Modifier base fields (modifiers/modifier.py); they schedule training steps and name groups.
const std::vector<std::string> kBaseKeys = {"index", "group", "start", "end", "update"};

bool contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

// One modifier after translation, in recipe order.
struct Translated {
  const PassSchema* schema;
  const ModifierTranslation* translation;
  std::string label;
  YAML::Mark mark;
  TranslatedModifier result;
  bool clean;  // its translation reported no problem
};

class Translator {
 public:
  Translator(const std::vector<PassSchema>& available, ProblemList& problems,
             std::vector<std::string>& warnings)
      : available_(available), problems_(problems), warnings_(warnings) {}

  std::vector<RawPass> translate(const YAML::Node& root) {
    std::vector<LlmcModifier> modifiers = read_structure(root);
    std::vector<Translated> translated;
    for (const auto& modifier : modifiers) translate_modifier(modifier, translated);
    return emit(translated);
  }

 private:
  void add(const YAML::Mark& mark, const std::string& label, const std::string& text) {
    problems_.add(mark, label, text);
  }
  // Stages, groups and modifiers, in file order (Recipe.from_dict, src/llmcompressor/recipe/
  // recipe.py, walks them the same way; it silently skips keys without the suffixes, which we
  // report instead).
  std::vector<LlmcModifier> read_structure(const YAML::Node& root) {
    std::vector<LlmcModifier> modifiers;
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
          LlmcModifier modifier{entry.first.Scalar(), entry.first.Scalar(), entry.first.Mark(), {}};
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

  // The schema whose pass the modifier translates to, and its translation.
  std::pair<const PassSchema*, const ModifierTranslation*> find(const std::string& modifier) const {
    for (const auto& schema : available_) {
      for (const auto& translation : schema.modifiers) {
        if (translation.modifier == modifier) return {&schema, &translation};
      }
    }
    return {nullptr, nullptr};
  }

  // The modifiers of the available passes, sorted, or those with the given grid in pass order.
  std::vector<std::string> modifier_names(std::optional<WeightGrid> grid = std::nullopt) const {
    std::vector<std::string> names;
    for (const auto& schema : available_) {
      for (const auto& translation : schema.modifiers) {
        if (!grid || translation.grid == *grid) names.push_back(translation.modifier);
      }
    }
    if (!grid) std::sort(names.begin(), names.end());
    return names;
  }

  void translate_modifier(const LlmcModifier& modifier, std::vector<Translated>& out) {
    auto [schema, translation] = find(modifier.name);
    if (translation == nullptr) {
      std::vector<std::string> names = modifier_names();
      add(modifier.mark, "",
          fmt::format("unknown modifier '{}'{} (available: {})", modifier.name,
                      did_you_mean(modifier.name, names), fmt::join(names, ", ")));
      return;
    }
    if (!check_keys(modifier, translation->keys)) return;
    ModifierContext context{modifier, problems_, warnings_, {}};
    size_t problems_before = problems_.size();
    translation->translate(context);
    std::optional<std::pair<std::string, ModifierArgs>> follow_up =
        std::move(context.result.follow_up);
    context.result.follow_up.reset();
    out.push_back(Translated{schema, translation, modifier.label, modifier.mark,
                             std::move(context.result), problems_.size() == problems_before});
    if (!follow_up) return;
    const std::string& next = follow_up->first;
    if (find(next).second == nullptr) {
      add(modifier.mark, modifier.label,
          fmt::format("its keys are read as a {}, but no registered pass translates {}", next,
                      next));
      return;
    }
    translate_modifier(LlmcModifier{next, modifier.label, modifier.mark, follow_up->second}, out);
  }

  // Unknown and repeated keys; true when there are none.
  bool check_keys(const LlmcModifier& modifier, const std::vector<std::string>& keys) {
    std::vector<std::string> allowed = kBaseKeys;
    allowed.insert(allowed.end(), keys.begin(), keys.end());
    bool ok = true;
    std::map<std::string, int> seen;
    for (const auto& [key_node, value] : modifier.args) {
      std::string key = key_node.Scalar();
      if (!contains(allowed, key)) {
        add(key_node.Mark(), modifier.label,
            fmt::format("unknown key '{}'{} (llm-compressor forbids extra inputs)", key,
                        did_you_mean(key, allowed)));
        ok = false;
      } else if (seen.count(key)) {
        add(key_node.Mark(), modifier.label,
            fmt::format("'{}' is given twice (first on line {})", key, seen[key]));
        ok = false;
      }
      seen.emplace(key, key_node.Mark().line + 1);
    }
    return ok;
  }

  RawPass entry(const Translated& item) const {
    RawPass raw{item.schema->name, item.label, item.mark, {}};
    raw.translated_cleanly = item.clean;
    return raw;
  }

  static void append(RawPass& raw, const std::vector<RawOption>& options) {
    raw.options.insert(raw.options.end(), options.begin(), options.end());
  }

  // Entries in modifier order: one per modifier without a grid, one per weight group of a
  // quantizer, and for a modifier that takes its grid from the next quantizer one per weight
  // group of that quantizer (Recipe.validate_model_after in recipe/recipe.py rejects AWQ without
  // one).
  std::vector<RawPass> emit(const std::vector<Translated>& translated) {
    std::vector<RawPass> passes;
    for (size_t i = 0; i < translated.size(); ++i) {
      const Translated& item = translated[i];
      switch (item.translation->grid) {
        case WeightGrid::kNone: {
          RawPass raw = entry(item);
          append(raw, item.result.options);
          passes.push_back(std::move(raw));
          break;
        }
        case WeightGrid::kOwn:
          for (const auto& group : item.result.groups) {
            RawPass raw = entry(item);
            raw.options.push_back(group.targets);
            if (item.result.ignore) raw.options.push_back(*item.result.ignore);
            append(raw, group.quant);
            append(raw, group.solver);
            append(raw, item.result.options);
            passes.push_back(std::move(raw));
          }
          break;
        case WeightGrid::kFromNextQuantizer: {
          auto next = std::find_if(
              translated.begin() + i + 1, translated.end(),
              [](const Translated& t) { return t.translation->grid == WeightGrid::kOwn; });
          if (next == translated.end()) {
            add(item.mark, item.label,
                fmt::format("needs a later {}: it takes its weight grid from the quantizing "
                            "modifier that follows it",
                            either(modifier_names(WeightGrid::kOwn))));
            break;
          }
          for (const auto& group : next->result.groups) {
            RawPass raw = entry(item);
            raw.options.push_back(group.targets);
            if (next->result.ignore) raw.options.push_back(*next->result.ignore);
            append(raw, group.quant);
            append(raw, item.result.options);
            passes.push_back(std::move(raw));
          }
          break;
        }
      }
    }
    return passes;
  }

  // "A", "A or B", "A, B or C"; "quantizing modifier" for none.
  static std::string either(const std::vector<std::string>& names) {
    if (names.empty()) return "quantizing modifier (no registered pass has one)";
    std::string out = names[0];
    for (size_t i = 1; i < names.size(); ++i) {
      out += (i + 1 == names.size() ? " or " : ", ") + names[i];
    }
    return out;
  }

  static bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  const std::vector<PassSchema>& available_;
  ProblemList& problems_;
  std::vector<std::string>& warnings_;
};

}  // namespace

std::vector<RawPass> translate_llmc_recipe(const YAML::Node& root,
                                           const std::vector<PassSchema>& available,
                                           ProblemList& problems,
                                           std::vector<std::string>& warnings) {
  return Translator(available, problems, warnings).translate(root);
}

}  // namespace presso::recipe_internal

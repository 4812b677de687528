// Typing a pass's YAML options against its schema, and the problem list both spellings share.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "lib/common/errors.h"
#include "lib/common/text.h"
#include "lib/recipe/raw_recipe.h"

namespace presso::recipe_internal {

void ProblemList::add(const YAML::Mark& mark, const std::string& label, const std::string& text) {
  int line = mark.line + 1;  // yaml-cpp counts from 0
  std::string where = line > 0 ? fmt::format("{}:{}: ", file_, line) : file_ + ": ";
  problems_.emplace_back(line, where + (label.empty() ? "" : label + ": ") + text);
}

void ProblemList::throw_if_any() const {
  if (problems_.empty()) return;
  auto sorted = problems_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string message;
  for (const auto& problem : sorted) message += (message.empty() ? "" : "\n") + problem.second;
  throw UserError(message);
}

namespace {

std::string folded(const std::string& word) {
  std::string out;
  for (char c : word) {
    if (c != '_' && c != '-') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::string closest_word(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    // Spelling differences in case and underscores ("blocksize", "Block_Size") count as none,
    // and a cut-short word ("smooth" for "smooth_layer") as one.
    std::string a = folded(word), b = folded(candidate);
    bool prefix = a.size() >= 3 && b.size() >= 3 && (a.rfind(b, 0) == 0 || b.rfind(a, 0) == 0);
    size_t distance = a == b ? 0 : prefix ? 1 : edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best = closest_word(word, candidates);
  return best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
}

std::string describe_node(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "'" + node.Scalar() + "'";
}

namespace {

// A scalar, or a list of scalars; a lone scalar is a one-item list, as llm-compressor's
// validate_targets does for `targets`.
bool read_string_list(const YAML::Node& node, std::vector<std::string>& out) {
  if (node.IsScalar()) {
    out = {node.Scalar()};
    return true;
  }
  if (!node.IsSequence()) return false;
  out.clear();
  for (const auto& item : node) {
    if (!item.IsScalar()) return false;
    out.push_back(item.Scalar());
  }
  return true;
}

// Returns "" and sets `out`, or the problem.
std::string read_mappings(const YAML::Node& node, std::vector<LayerMapping>& out) {
  if (!node.IsSequence()) return "expected " + option_type_name(OptionType::kMappingList);
  for (const auto& item : node) {
    if (!item.IsMap()) return "each mapping must be {smooth_layer: ..., balance_layers: [...]}";
    LayerMapping mapping;
    for (const auto& field : item) {
      std::string key = field.first.Scalar();
      bool read = false;
      if (key == "smooth_layer") {
        read = field.second.IsScalar();
        if (read) mapping.smooth_layer = field.second.Scalar();
      } else if (key == "balance_layers") {
        read = read_string_list(field.second, mapping.balance_layers);
      } else {
        return fmt::format("unknown mapping key '{}'{}", key,
                           did_you_mean(key, {"smooth_layer", "balance_layers"}));
      }
      if (!read) {
        return fmt::format("mapping key '{}' has the wrong type ({})", key,
                           describe_node(field.second));
      }
    }
    if (mapping.smooth_layer.empty() || mapping.balance_layers.empty()) {
      return "each mapping needs a smooth_layer and at least one balance_layers entry";
    }
    out.push_back(std::move(mapping));
  }
  return "";
}

// Returns "" and sets `out`, or the problem (without the key).
std::string read_value(const OptionSpec& spec, const YAML::Node& node, OptionValue& out) {
  std::string wanted = "expected " + option_type_name(spec.type) + ", got " + describe_node(node);
  switch (spec.type) {
    case OptionType::kBool: {
      bool value = false;
      if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) return wanted;
      out = value;
      return "";
    }
    case OptionType::kInt: {
      int64_t value = 0;
      if (!node.IsScalar() || !YAML::convert<int64_t>::decode(node, value)) return wanted;
      out = value;
      return "";
    }
    case OptionType::kFloat: {
      double value = 0;
      if (!node.IsScalar() || !YAML::convert<double>::decode(node, value) ||
          !std::isfinite(value)) {
        return wanted;
      }
      out = value;
      return "";
    }
    case OptionType::kString:
      if (!node.IsScalar()) return wanted;
      out = node.Scalar();
      return "";
    case OptionType::kEnum: {
      if (!node.IsScalar()) return wanted;
      std::string text = node.Scalar();
      bool flag = false;
      // A plain `true`/`yes` reaches us as text; spell it the way the enum does.
      if (node.Tag() != "!" && YAML::convert<bool>::decode(node, flag)) {
        text = flag ? "true" : "false";
      }
      const auto& words = spec.allowed;
      if (std::find(words.begin(), words.end(), text) == words.end()) {
        return fmt::format("'{}' is not one of: {}", node.Scalar(), fmt::join(words, ", "));
      }
      out = text;
      return "";
    }
    case OptionType::kStringList: {
      std::vector<std::string> value;
      if (!read_string_list(node, value)) return wanted;
      out = value;
      return "";
    }
    case OptionType::kMappingList: {
      std::vector<LayerMapping> value;
      std::string problem = read_mappings(node, value);
      if (!problem.empty()) return problem;
      out = value;
      return "";
    }
  }
  return wanted;
}

std::string check_range(const OptionSpec& spec, const OptionValue& value) {
  double number = 0;
  if (const auto* i = std::get_if<int64_t>(&value)) {
    number = static_cast<double>(*i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    number = *d;
  } else {
    return "";
  }
  if ((spec.min && number < *spec.min) || (spec.max && number > *spec.max)) {
    std::string low = spec.min ? fmt::format("{}", *spec.min) : "-inf";
    std::string high = spec.max ? fmt::format("{}", *spec.max) : "inf";
    return fmt::format("{} is out of range [{}, {}]", format_option_value(value), low, high);
  }
  return "";
}

}  // namespace

PassOptions validate_pass(const RawPass& raw, const PassSchema& schema, ProblemList& problems) {
  std::vector<std::string> keys;
  for (const auto& spec : schema.options) keys.push_back(spec.key);

  size_t problems_before = problems.size();
  std::vector<const RawOption*> given(schema.options.size(), nullptr);
  std::vector<OptionValue> values(schema.options.size());
  for (const auto& option : raw.options) {
    auto it = std::find(keys.begin(), keys.end(), option.key);
    if (it == keys.end()) {
      if (option.shown_key != option.key) {
        // A translated key whose counterpart the registered pass does not declare.
        problems.add(option.mark, raw.label,
                     fmt::format("'{}' has no counterpart '{}' in pass '{}'", option.shown_key,
                                 option.key, raw.pass));
      } else {
        problems.add(option.mark, raw.label,
                     fmt::format("unknown key '{}'{}", option.key, did_you_mean(option.key, keys)));
      }
      continue;
    }
    size_t index = static_cast<size_t>(it - keys.begin());
    if (given[index] != nullptr) {
      problems.add(option.mark, raw.label,
                   fmt::format("'{}' is given twice (first on line {})", option.shown_key,
                               given[index]->mark.line + 1));
      continue;
    }
    given[index] = &option;
    const OptionSpec& spec = schema.options[index];
    std::string problem = read_value(spec, option.value, values[index]);
    if (problem.empty()) problem = check_range(spec, values[index]);
    if (problem.empty() && spec.check) problem = spec.check(values[index]);
    if (!problem.empty()) problems.add(option.mark, raw.label, option.shown_key + ": " + problem);
  }

  PassOptions options;
  for (size_t i = 0; i < schema.options.size(); ++i) {
    const OptionSpec& spec = schema.options[i];
    if (given[i] != nullptr) {
      options.set(spec.key, values[i]);
    } else if (spec.default_value) {
      options.set(spec.key, *spec.default_value);
    } else if (spec.required) {
      problems.add(raw.mark, raw.label, fmt::format("missing required key '{}'", spec.key));
    }
  }
  if (problems.size() == problems_before && raw.translated_cleanly && schema.cross_check) {
    for (const auto& problem : schema.cross_check(options)) {
      auto it = std::find(keys.begin(), keys.end(), problem.key);
      const RawOption* at = it == keys.end() ? nullptr : given[it - keys.begin()];
      problems.add(at ? at->mark : raw.mark, raw.label, problem.message);
    }
  }
  return options;
}

}  // namespace presso::recipe_internal

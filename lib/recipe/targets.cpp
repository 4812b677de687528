#include "lib/recipe/targets.h"

#include <fmt/format.h>

#include <algorithm>

#include "lib/common/errors.h"
#include "lib/common/text.h"
#include "lib/recipe/recipe.h"

namespace presso {
namespace {

constexpr const char* kRegexPrefix = "re:";
// llm-compressor's class-name target for every linear (compressed-tensors
// src/compressed_tensors/utils/match.py, _match_class, compares module class names).
constexpr const char* kLinearClass = "Linear";

bool is_regex(const std::string& pattern) { return pattern.rfind(kRegexPrefix, 0) == 0; }

std::string last_component(const std::string& name) {
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

}  // namespace

std::string check_target_pattern(const std::string& pattern) {
  if (pattern.empty()) return "an empty pattern matches nothing";
  if (!is_regex(pattern)) return "";
  try {
    BoundedRegex(std::string_view(pattern).substr(3), /*unicode=*/false);
  } catch (const std::invalid_argument& e) {
    return fmt::format("'{}' is not a valid regular expression: {}", abbreviate(pattern), e.what());
  }
  return "";
}

TargetPattern::TargetPattern(std::string pattern, std::string where)
    : text_(std::move(pattern)),
      described_(fmt::format("{}target pattern '{}'", where, abbreviate(text_))) {
  std::string problem = check_target_pattern(text_);
  if (!problem.empty()) fail_internal("unchecked target pattern: {}", problem);
  if (is_regex(text_)) regex_.emplace(std::string_view(text_).substr(3), /*unicode=*/false);
}

bool TargetPattern::matches(const std::string& name) const {
  if (regex_) {
    // Anchored at the start only, like Python's re.match.
    return regex_->matches_start(name, described_);
  }
  if (text_ == kLinearClass) return true;
  return name == text_ || (name.size() > text_.size() &&
                           name.compare(name.size() - text_.size(), text_.size(), text_) == 0 &&
                           name[name.size() - text_.size() - 1] == '.');
}

bool TargetPattern::selects(const LinearInfo& linear) const {
  if (!matches(linear.name)) return false;
  if (linear.in_block) return true;
  if (regex_) return text_.find(last_component(linear.name)) != std::string::npos;
  return text_ != kLinearClass;
}

namespace {

std::string entry_prefix(const PassEntry& entry) {
  return fmt::format("{}:{}: {}: ", entry.where.file, entry.where.line, entry.where.label);
}

std::vector<TargetPattern> compile(const std::vector<std::string>& patterns,
                                   const PassEntry& entry) {
  std::vector<TargetPattern> compiled;
  for (const auto& pattern : patterns) compiled.emplace_back(pattern, entry_prefix(entry));
  return compiled;
}

}  // namespace

Plan resolve_plan(const Recipe& recipe, const std::vector<PassSchema>& schemas,
                  const std::vector<LinearInfo>& linears) {
  Plan plan;
  for (const auto& linear : linears) plan.layers.push_back(LayerPlan{linear, {}});
  std::vector<std::string> problems;

  for (size_t index = 0; index < recipe.passes.size(); ++index) {
    const PassEntry& entry = recipe.passes[index];
    auto schema = std::find_if(schemas.begin(), schemas.end(),
                               [&](const PassSchema& s) { return s.name == entry.pass; });
    if (schema == schemas.end()) fail_internal("no schema for pass '{}'", entry.pass);
    auto targets = compile(entry.options.get_strings("targets"), entry);
    auto ignore = compile(entry.options.get_strings("ignore"), entry);
    std::vector<size_t> target_hits(targets.size()), ignore_hits(ignore.size());
    std::vector<std::string> passed_over;  // outside the blocks, matched only by broad patterns
    size_t selected = 0;

    for (auto& layer : plan.layers) {
      bool targeted = false, broad_match = false, ignored = false;
      for (size_t t = 0; t < targets.size(); ++t) {
        if (targets[t].selects(layer.linear)) {
          ++target_hits[t];
          targeted = true;
        } else if (targets[t].matches(layer.linear.name)) {
          broad_match = true;
        }
      }
      for (size_t i = 0; i < ignore.size(); ++i) {
        if (ignore[i].matches(layer.linear.name)) {
          ++ignore_hits[i];
          ignored = true;
        }
      }
      if (!targeted && broad_match && !ignored) passed_over.push_back(layer.linear.name);
      if (!targeted || ignored) continue;
      layer.passes.push_back(index);
      ++selected;
      if (schema->shape_check) {
        for (const auto& problem : schema->shape_check(entry.options, layer.linear)) {
          problems.push_back(entry_prefix(entry) + problem);
        }
      }
    }

    for (size_t t = 0; t < targets.size(); ++t) {
      if (target_hits[t] == 0) {
        plan.warnings.push_back(fmt::format("{}target pattern '{}' matches no linear",
                                            entry_prefix(entry), targets[t].text()));
      }
    }
    for (size_t i = 0; i < ignore.size(); ++i) {
      if (ignore_hits[i] == 0) {
        plan.warnings.push_back(fmt::format("{}ignore pattern '{}' matches no linear",
                                            entry_prefix(entry), ignore[i].text()));
      }
    }
    for (const auto& name : passed_over) {
      plan.warnings.push_back(fmt::format(
          "{}{} is outside the decoder blocks and left alone; name it in targets ('{}') to "
          "compress it",
          entry_prefix(entry), name, last_component(name)));
    }
    if (selected == 0) {
      problems.push_back(fmt::format("{}selects no linear of this model (targets {}, ignore {})",
                                     entry_prefix(entry),
                                     format_option_value(entry.options.get_strings("targets")),
                                     format_option_value(entry.options.get_strings("ignore"))));
    }
  }
  if (!problems.empty()) {
    std::string message;
    for (const auto& problem : fold_block_indices(problems))
      message += (message.empty() ? "" : "\n") + problem;
    throw UserError(message);
  }
  return plan;
}

}  // namespace presso

// Parsing (our spelling here, llm-compressor's in llmc_recipe.cpp) and canonical printing.
#include "lib/recipe/recipe.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <set>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/recipe/raw_recipe.h"

namespace presso {
namespace {

using recipe_internal::describe_node;
using recipe_internal::did_you_mean;
using recipe_internal::ProblemList;
using recipe_internal::RawOption;
using recipe_internal::RawPass;

// Schemas come from code, so a bad one is a bug: every pass must have list-valued targets and
// ignore, names must be unique, and a modifier must translate to one pass.
void check_schemas(const std::vector<PassSchema>& schemas) {
  std::set<std::string> names, modifiers;
  for (const auto& schema : schemas) {
    if (!names.insert(schema.name).second)
      fail_internal("pass '{}' is registered twice", schema.name);
    for (const auto& translation : schema.modifiers) {
      if (!modifiers.insert(translation.modifier).second || !translation.translate) {
        fail_internal("modifier '{}' of pass '{}' is listed twice or has no translation",
                      translation.modifier, schema.name);
      }
    }
    for (const char* key : {"targets", "ignore"}) {
      const OptionSpec* spec = schema.find(key);
      if (spec == nullptr || spec->type != OptionType::kStringList || !spec->default_value) {
        fail_internal("schema of pass '{}' lacks the '{}' list (use target_options())", schema.name,
                      key);
      }
    }
  }
}

const PassSchema* find_schema(const std::vector<PassSchema>& schemas, const std::string& name) {
  for (const auto& schema : schemas) {
    if (schema.name == name) return &schema;
  }
  return nullptr;
}

std::vector<std::string> schema_names(const std::vector<PassSchema>& schemas) {
  std::vector<std::string> names;
  for (const auto& schema : schemas) names.push_back(schema.name);
  return names;
}

// One item of `passes:`: `- name: {options}`, `- name:` or `- name`.
void read_concise_entry(const YAML::Node& item, const std::vector<PassSchema>& schemas,
                        ProblemList& problems, std::vector<RawPass>& out) {
  YAML::Node options;
  RawPass raw;
  raw.mark = item.Mark();
  if (item.IsScalar()) {
    raw.pass = item.Scalar();
  } else if (item.IsMap() && item.size() == 1) {
    raw.pass = item.begin()->first.Scalar();
    raw.mark = item.begin()->first.Mark();
    options = item.begin()->second;
  } else {
    problems.add(item.Mark(), "passes",
                 fmt::format("each entry must be a one-key mapping `- name: {{options}}`, got {}{}",
                             describe_node(item),
                             item.IsMap() ? fmt::format(" with {} keys", item.size()) : ""));
    return;
  }
  raw.label = raw.pass;
  if (find_schema(schemas, raw.pass) == nullptr) {
    auto names = schema_names(schemas);
    problems.add(raw.mark, "",
                 fmt::format("unknown pass '{}'{} (available: {})", raw.pass,
                             did_you_mean(raw.pass, names), fmt::join(names, ", ")));
    return;
  }
  if (options && !options.IsNull()) {
    if (!options.IsMap()) {
      problems.add(options.Mark(), raw.label,
                   "options must be a mapping of key: value, got " + describe_node(options));
      return;
    }
    for (const auto& option : options) {
      std::string key = option.first.Scalar();
      raw.options.push_back(RawOption{key, key, option.second, option.first.Mark()});
    }
  }
  out.push_back(std::move(raw));
}

std::vector<RawPass> read_concise_recipe(const YAML::Node& root,
                                         const std::vector<PassSchema>& schemas,
                                         ProblemList& problems) {
  std::vector<RawPass> raws;
  int passes_seen = 0;
  for (const auto& top : root) {
    std::string key = top.first.Scalar();
    if (key != "passes") {
      problems.add(top.first.Mark(), "",
                   fmt::format("unknown top-level key '{}'{} (a recipe holds only `passes`)", key,
                               did_you_mean(key, {"passes"})));
      continue;
    }
    if (++passes_seen > 1) {
      problems.add(top.first.Mark(), "", "'passes' is given twice");
      continue;
    }
    const YAML::Node& list = top.second;
    if (list.IsNull() || (list.IsSequence() && list.size() == 0)) {
      problems.add(top.first.Mark(), "", "empty recipe: `passes` lists no pass");
    } else if (!list.IsSequence()) {
      problems.add(list.Mark(), "",
                   "passes: expected a list of passes, got " + describe_node(list));
    } else {
      for (const auto& item : list) read_concise_entry(item, schemas, problems, raws);
    }
  }
  return raws;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Recipe parse_recipe(const std::string& text, const std::string& file,
                    const std::vector<PassSchema>& schemas, std::vector<std::string>* warnings) {
  check_schemas(schemas);
  ProblemList problems(file);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp stops at a few hundred nested nodes, lest its recursive descent exhaust the stack;
    // its own message is "bad file".
    problems.add(e.mark, "",
                 fmt::format("YAML nests deeper than {} levels (a recipe needs a few)", e.depth()));
    problems.throw_if_any();
  } catch (const YAML::ParserException& e) {
    problems.add(e.mark, "", "YAML syntax error: " + e.msg);
    problems.throw_if_any();
  }
  const std::string expected = "expected `passes:` or llm-compressor `*_stage:` keys";
  if (!root.IsDefined() || root.IsNull()) fail_user("{}: empty recipe ({})", file, expected);
  if (!root.IsMap()) {
    problems.add(root.Mark(), "", fmt::format("{}, got {}", expected, describe_node(root)));
    problems.throw_if_any();
  }

  bool ours = false, theirs = false;
  for (const auto& top : root) {
    ours = ours || top.first.Scalar() == "passes";
    theirs = theirs || ends_with(top.first.Scalar(), "_stage");
  }
  std::vector<std::string> notes;
  std::vector<RawPass> raws;
  if (ours) {
    raws = read_concise_recipe(root, schemas, problems);
  } else if (theirs) {
    raws = recipe_internal::translate_llmc_recipe(root, schemas, problems, notes);
  } else {
    std::vector<std::string> keys;
    for (const auto& top : root) keys.push_back(top.first.Scalar());
    problems.add(root.Mark(), "", fmt::format("{}, got keys: {}", expected, fmt::join(keys, ", ")));
  }

  Recipe recipe;
  for (const auto& raw : raws) {
    PassEntry entry;
    entry.pass = raw.pass;
    entry.options = recipe_internal::validate_pass(raw, *find_schema(schemas, raw.pass), problems);
    entry.where = SourceLocation{file, raw.mark.line + 1, raw.label};
    recipe.passes.push_back(std::move(entry));
  }
  problems.throw_if_any();
  if (recipe.passes.empty()) fail_user("{}: empty recipe: no pass to run", file);
  if (warnings != nullptr) warnings->insert(warnings->end(), notes.begin(), notes.end());
  return recipe;
}

Recipe load_recipe(const std::string& path, const std::vector<PassSchema>& schemas,
                   std::vector<std::string>* warnings) {
  return parse_recipe(read_file_bytes(path), path, schemas, warnings);
}

std::string print_recipe(const Recipe& recipe) {
  std::string out = "passes:\n";
  for (const auto& entry : recipe.passes) {
    out += fmt::format("  - {}:\n", entry.pass);
    for (const auto& [key, value] : entry.options.entries()) {
      out += fmt::format("      {}: {}\n", key, format_option_value(value));
    }
  }
  return out;
}

}  // namespace presso

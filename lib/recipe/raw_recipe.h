// Internal to lib/recipe: the step between YAML and Recipe that both spellings share. Each
// spelling turns its YAML into RawPass entries (our key names, the user's YAML values and marks);
// validate_pass then types them against the pass's schema.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "lib/recipe/recipe.h"

namespace presso::recipe_internal {

// Collects problems with their positions; throws them all as one UserError.
class ProblemList {
 public:
  explicit ProblemList(std::string file) : file_(std::move(file)) {}
  // "file:line: label: text", or "file:line: text" when label is empty.
  void add(const YAML::Mark& mark, const std::string& label, const std::string& text);
  bool empty() const { return problems_.empty(); }
  size_t size() const { return problems_.size(); }
  const std::string& file() const { return file_; }
  // Lines sorted by position (stable), joined by newlines.
  void throw_if_any() const;

 private:
  std::string file_;
  std::vector<std::pair<int, std::string>> problems_;  // (line, message)
};

struct RawOption {
  std::string key;        // our key: "bits"
  std::string shown_key;  // as the user wrote it: "config_groups.group_0.weights.num_bits"
  YAML::Node value;
  YAML::Mark mark;
};

struct RawPass {
  std::string pass;   // schema name
  std::string label;  // "gptq" or "GPTQModifier"
  YAML::Mark mark;
  std::vector<RawOption> options;
  // False when translating it from an llm-compressor modifier reported problems: its cross-key
  // rules are then not run, since they would only restate them in our key names.
  bool translated_cleanly = true;
};

// The closest of `candidates` to `word`, or "" when none is close enough to suggest.
std::string closest_word(const std::string& word, const std::vector<std::string>& candidates);
// " (did you mean 'x'?)" or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// How a node reads in a message: 'four', a list, a mapping, null.
std::string describe_node(const YAML::Node& node);

// Types `raw` against `schema` into options with defaults filled; problems go to `problems`.
// Runs the cross-key check only when every key is valid on its own.
PassOptions validate_pass(const RawPass& raw, const PassSchema& schema, ProblemList& problems);

// Translates an llm-compressor recipe (root has `*_stage` keys) into raw passes for the passes
// in `available`, through the modifiers their schemas list; problems go to `problems`, notes to
// `warnings`.
std::vector<RawPass> translate_llmc_recipe(const YAML::Node& root,
                                           const std::vector<PassSchema>& available,
                                           ProblemList& problems,
                                           std::vector<std::string>& warnings);

}  // namespace presso::recipe_internal

// Which linears a recipe entry applies to: target and ignore patterns, and the per-layer plan of
// a recipe resolved against a model's linears. Torch-free; see recipe.h.
//
// A pattern matches a full linear name ("model.layers.3.self_attn.q_proj") when it is
//   - the name itself, or a suffix of it at a dot boundary: "q_proj", "self_attn.q_proj";
//   - "re:REGEX": REGEX (PCRE2, Perl's and Python's syntax) matched at the start of the name but
//     not necessarily to its end, as llm-compressor does with Python's re.match (compressed-tensors
//     src/compressed_tensors/utils/match.py, match_name). "re:.*q_proj" also matches
//     "...q_proj_extra"; end the regex with "$" to anchor it. Matching is bounded
//     (lib/common/bounded_regex.h): a regex that backtracks catastrophically is a UserError;
//   - "Linear", llm-compressor's class-name target: every linear.
// Ignore wins over targets. Linears outside the decoder blocks (lm_head) are selected only by a
// pattern that names them: "lm_head", or a regex whose text contains "lm_head"; `Linear` and
// other broad patterns leave them alone (llm-compressor's `Linear` includes lm_head, which is why
// its recipes carry `ignore: [lm_head]`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lib/common/bounded_regex.h"
#include "lib/recipe/schema.h"

namespace presso {

struct Recipe;

// "" when the pattern is usable, else why not (a regex that does not compile, or nests its
// groups deeper than 250).
std::string check_target_pattern(const std::string& pattern);

class TargetPattern {
 public:
  // InternalError for a pattern that check_target_pattern rejects. `where` prefixes messages
  // ("w4.yaml:3: gptq: ").
  explicit TargetPattern(std::string pattern, std::string where = "");
  const std::string& text() const { return text_; }
  // Whether the pattern matches the name, whatever the linear's place in the model. UserError
  // naming the pattern and the name when a regex gives up (catastrophic backtracking).
  bool matches(const std::string& name) const;
  // Whether, as a target, it selects the linear (the rule for linears outside the blocks).
  bool selects(const LinearInfo& linear) const;

 private:
  std::string text_;
  std::string described_;              // "w4.yaml:3: gptq: target pattern 're:...'", for messages
  std::optional<BoundedRegex> regex_;  // for "re:" patterns
};

// The passes, as indices into Recipe::passes in recipe order, that apply to one linear.
struct LayerPlan {
  LinearInfo linear;
  std::vector<size_t> passes;
};

struct Plan {
  std::vector<LayerPlan> layers;      // every linear given, in the order given
  std::vector<std::string> warnings;  // "w4.yaml:3: gptq: ignore pattern 'x' matches no linear"
};

// Resolves the recipe against the model's linears and runs the schemas' shape checks on every
// selected linear. UserError listing all problems: an entry whose targets select no linear, a
// group size that does not divide a linear's input width, ... Patterns that match nothing are
// warnings only. `schemas` must hold a schema for every pass of the recipe.
Plan resolve_plan(const Recipe& recipe, const std::vector<PassSchema>& schemas,
                  const std::vector<LinearInfo>& linears);

// The plan as a table for `presso recipe check`: the passes with all their settings, then one row
// per linear (name, [out, in], the passes that apply with their plan keys), then warnings.
std::string format_plan(const Recipe& recipe, const std::vector<PassSchema>& schemas,
                        const Plan& plan);

}  // namespace presso

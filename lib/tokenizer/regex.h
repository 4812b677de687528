// PCRE2 (8-bit, UTF + UCP, JIT) regular expressions with the Oniguruma semantics that the Rust
// `tokenizers` library gives its patterns, matched within lib/common/bounded_regex.h's limits.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/common/bounded_regex.h"

namespace presso {

class Regex {
 public:
  // `source` says where the pattern comes from ("tokenizer.json: key 'pre_tokenizer.pattern'").
  // Throws std::invalid_argument with PCRE2's message and offset when `pattern` does not compile;
  // callers add the file and key.
  Regex(std::string_view pattern, std::string source);

  // Appends the non-empty, non-overlapping matches in `text` (valid UTF-8) from left to right.
  // UserError naming the source and the pattern when PCRE2's limits stop a search (a pattern
  // that backtracks catastrophically on this text).
  void find_all(std::string_view text, std::vector<Span>& matches) const;

  // A pattern matching `literal` exactly.
  static std::string escape(std::string_view literal);

 private:
  BoundedRegex regex_;
  std::string pattern_;  // as written in the file, for messages
  std::string source_;
};

// A tokenizer.json pattern: {"String": literal} or {"Regex": oniguruma pattern}. Literals are
// searched directly, which is faster than a regex for the common single-character case.
class Pattern {
 public:
  static Pattern literal(std::string text) { return Pattern(std::move(text), nullptr); }
  static Pattern regex(std::string_view pattern, std::string source) {
    return Pattern({}, std::make_shared<Regex>(pattern, std::move(source)));
  }

  // Appends the non-empty, non-overlapping matches in `text` from left to right.
  void find_all(std::string_view text, std::vector<Span>& matches) const;
  // `text` with every match replaced by `content`.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  Pattern(std::string literal, std::shared_ptr<const Regex> regex)
      : literal_(std::move(literal)), regex_(std::move(regex)) {}

  std::string literal_;
  std::shared_ptr<const Regex> regex_;  // null for a literal
};

}  // namespace presso

// PCRE2 (8-bit, UTF + UCP, JIT) regular expressions with the Oniguruma semantics that the Rust
// `tokenizers` library gives its patterns.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace presso {

// (start, end) byte offsets of one match.
using Span = std::pair<size_t, size_t>;

class Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message and offset when `pattern` does not compile;
  // callers add the file and key.
  explicit Regex(std::string_view pattern);

  // Appends the non-empty, non-overlapping matches in `text` (valid UTF-8) from left to right.
  void find_all(std::string_view text, std::vector<Span>& matches) const;

  // A pattern matching `literal` exactly.
  static std::string escape(std::string_view literal);

 private:
  std::shared_ptr<void> code_;  // pcre2_code_8, freed by its deleter
};

// A tokenizer.json pattern: {"String": literal} or {"Regex": oniguruma pattern}. Literals are
// searched directly, which is faster than a regex for the common single-character case.
class Pattern {
 public:
  static Pattern literal(std::string text) { return Pattern(std::move(text), nullptr); }
  static Pattern regex(std::string_view pattern) {
    return Pattern({}, std::make_shared<Regex>(pattern));
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

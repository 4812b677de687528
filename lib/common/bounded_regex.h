// Regular expressions from user input (recipe targets, quantization_config targets, tokenizer.json
// patterns), run by PCRE2 within limits so that no pattern can exhaust the stack or run for hours:
// std::regex recursed once per nested group and crashed on 20k of them, and `(.+)+x` against a
// layer name backtracked for ever. Compiling refuses parentheses nested deeper than 250; matching
// gives up after PCRE2's match limit (10 million backtracking steps) or a full JIT stack.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace presso {

// (start, end) byte offsets of one match.
using Span = std::pair<size_t, size_t>;

// PCRE2 gave up on a subject before deciding whether the pattern matches it: the pattern
// backtracks catastrophically there. Callers turn it into a UserError naming the pattern and
// where it came from.
class RegexLimitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class BoundedRegex {
 public:
  // `unicode`: UTF-8 pattern and subjects, with Unicode properties for \w, \d, \s (PCRE2_UTF |
  // PCRE2_UCP); subjects must then be valid UTF-8 (not checked again). Throws
  // std::invalid_argument "<PCRE2's message> at offset <n>" when the pattern does not compile.
  BoundedRegex(std::string_view pattern, bool unicode);

  // The first match starting at or after byte `start` of `subject`, or with `anchored` only one
  // starting exactly there. RegexLimitError when a limit stops the search.
  std::optional<Span> find(std::string_view subject, size_t start, bool anchored) const;

  // Whether a match starts at the first byte of `subject`, as Python's re.match. UserError
  // "<what> gave up on '<subject>' (PCRE2: ...)" when a limit stops the search; `what` names the
  // pattern and where it comes from.
  bool matches_start(std::string_view subject, const std::string& what) const;

 private:
  std::shared_ptr<void> code_;  // pcre2_code_8, freed by its deleter
};

}  // namespace presso

#include "lib/tokenizer/regex.h"

#include <optional>
#include <stdexcept>

#include "lib/common/errors.h"
#include "lib/common/text.h"
#include "lib/tokenizer/unicode.h"

namespace presso {
namespace {

// Oniguruma's \s is the White_Space property, which includes U+0085; PCRE2's UCP \s is
// \p{Xps}, which does not. Rewrite \s and \S (inside classes too) so both engines agree.
std::string translate_oniguruma(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        out += "\\p{White_Space}";
      } else if (next == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += '\\';
        out += next;
      }
    } else {
      out += pattern[i];
    }
  }
  return out;
}

BoundedRegex compile_oniguruma(std::string_view pattern) {
  try {
    return BoundedRegex(translate_oniguruma(pattern), /*unicode=*/true);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("regex '" + abbreviate(pattern) +
                                "' does not compile: " + e.what());
  }
}

}  // namespace

Regex::Regex(std::string_view pattern, std::string source)
    : regex_(compile_oniguruma(pattern)), pattern_(pattern), source_(std::move(source)) {}

void Regex::find_all(std::string_view text, std::vector<Span>& matches) const {
  size_t start = 0;
  while (start < text.size()) {
    std::optional<Span> match;
    try {
      match = regex_.find(text, start, /*anchored=*/false);
    } catch (const RegexLimitError& e) {
      fail_user(
          "{}: regex '{}' gave up on a piece of {} bytes of the text (PCRE2: {}): the "
          "pattern backtracks catastrophically",
          source_, abbreviate(pattern_), text.size(), e.what());
    }
    if (!match) return;
    if (match->second > match->first) {
      matches.push_back(*match);
      start = match->second;
    } else {
      // An empty match yields no piece; step over one whole code point and search on.
      if (match->first >= text.size()) return;
      const auto lead = static_cast<unsigned char>(text[match->first]);
      start = match->first + unicode::sequence_length(lead);
    }
  }
}

std::string Regex::escape(std::string_view literal) {
  std::string out = "\\Q";
  // \Q...\E quotes everything except a literal "\E", which must end the quote and be escaped.
  for (size_t i = 0; i < literal.size(); ++i) {
    if (literal[i] == '\\' && i + 1 < literal.size() && literal[i + 1] == 'E') {
      out += "\\E\\\\E\\Q";
      ++i;
    } else {
      out += literal[i];
    }
  }
  return out + "\\E";
}

void Pattern::find_all(std::string_view text, std::vector<Span>& matches) const {
  if (regex_) {
    regex_->find_all(text, matches);
    return;
  }
  if (literal_.empty()) return;
  for (size_t pos = text.find(literal_); pos != std::string_view::npos;
       pos = text.find(literal_, pos + literal_.size())) {
    matches.emplace_back(pos, pos + literal_.size());
  }
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::vector<Span> matches;
  find_all(text, matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + matches.size() * content.size());
  size_t previous = 0;
  for (const Span& match : matches) {
    out.append(text.substr(previous, match.first - previous));
    out.append(content);
    previous = match.second;
  }
  out.append(text.substr(previous));
  return out;
}

}  // namespace presso

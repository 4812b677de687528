#include "lib/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

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

struct MatchData {
  pcre2_match_data* data;
  pcre2_match_context* context;
  pcre2_jit_stack* stack;
  MatchData()
      : data(pcre2_match_data_create(1, nullptr)),
        context(pcre2_match_context_create(nullptr)),
        // Long runs of letters or spaces backtrack deeply; 32 KiB (the default) is too small.
        stack(pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr)) {
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchData() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

// JIT stacks and match data may not be shared between threads; one set per thread is reused.
MatchData& thread_match_data() {
  thread_local MatchData match_data;
  return match_data;
}

}  // namespace

Regex::Regex(std::string_view pattern) {
  const std::string translated = translate_oniguruma(pattern);
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw std::invalid_argument("regex '" + std::string(pattern) +
                                "' does not compile: " + reinterpret_cast<const char*>(message) +
                                " at offset " + std::to_string(error_offset));
  }
  // Without JIT support (some builds) pcre2_match falls back to the interpreter: same results.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ =
      std::shared_ptr<void>(code, [](void* p) { pcre2_code_free(static_cast<pcre2_code*>(p)); });
}

void Regex::find_all(std::string_view text, std::vector<Span>& matches) const {
  auto* code = static_cast<pcre2_code*>(code_.get());
  MatchData& match = thread_match_data();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start < text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, match.data,
                               match.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      throw std::runtime_error(std::string("regex match failed: ") +
                               reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    if (ovector[1] > ovector[0]) {
      matches.emplace_back(ovector[0], ovector[1]);
      start = ovector[1];
    } else {
      // An empty match yields no piece; step over one whole code point and search on.
      if (ovector[0] >= text.size()) return;
      start = ovector[0] + unicode::sequence_length(static_cast<unsigned char>(text[ovector[0]]));
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

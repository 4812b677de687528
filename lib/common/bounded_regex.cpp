#include "lib/common/bounded_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "lib/common/errors.h"

namespace presso {
namespace {

// PCRE2's own defaults, stated so that the guard does not depend on how the library was built.
constexpr uint32_t kParensNestLimit = 250;
constexpr uint32_t kMatchLimit = 10'000'000;

std::string pcre2_message(int code) {
  PCRE2_UCHAR message[256];
  pcre2_get_error_message(code, message, sizeof(message));
  return reinterpret_cast<const char*>(message);
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
    pcre2_set_match_limit(context, kMatchLimit);
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

BoundedRegex::BoundedRegex(std::string_view pattern, bool unicode) {
  std::unique_ptr<pcre2_compile_context, void (*)(pcre2_compile_context*)> context(
      pcre2_compile_context_create(nullptr), pcre2_compile_context_free);
  pcre2_set_parens_nest_limit(context.get(), kParensNestLimit);
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    unicode ? PCRE2_UTF | PCRE2_UCP : 0, &error, &error_offset, context.get());
  if (code == nullptr) {
    throw std::invalid_argument(pcre2_message(error) + " at offset " +
                                std::to_string(error_offset));
  }
  // Without JIT support (some builds) pcre2_match falls back to the interpreter: same results,
  // and the match limit holds there too.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ =
      std::shared_ptr<void>(code, [](void* p) { pcre2_code_free(static_cast<pcre2_code*>(p)); });
}

std::optional<Span> BoundedRegex::find(std::string_view subject, size_t start,
                                       bool anchored) const {
  MatchData& match = thread_match_data();
  const uint32_t options = PCRE2_NO_UTF_CHECK | (anchored ? PCRE2_ANCHORED : 0);
  const int rc = pcre2_match(static_cast<const pcre2_code*>(code_.get()),
                             reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start,
                             options, match.data, match.context);
  if (rc == PCRE2_ERROR_NOMATCH) return std::nullopt;
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
      rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    throw RegexLimitError(pcre2_message(rc));
  }
  if (rc < 0) throw std::runtime_error("regex match failed: " + pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
  return Span(ovector[0], ovector[1]);
}

bool BoundedRegex::matches_start(std::string_view subject, const std::string& what) const {
  try {
    return find(subject, 0, /*anchored=*/true).has_value();
  } catch (const RegexLimitError& e) {
    fail_user("{} gave up on '{}' (PCRE2: {}): the regex backtracks catastrophically", what,
              subject, e.what());
  }
}

}  // namespace presso

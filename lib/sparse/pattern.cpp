#include "lib/sparse/pattern.h"

#include <fmt/format.h>

#include <cctype>

#include "lib/common/errors.h"

namespace presso {
namespace {

// Digits only (no sign, no spaces), within int range; false otherwise.
bool parse_count(const std::string& text, int& value) {
  if (text.empty() || text.size() > 9) return false;
  value = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    value = value * 10 + (c - '0');
  }
  return true;
}

std::string pattern_problem(const SparsityPattern& pattern) {
  if (pattern.n == 0 && pattern.m == 0) return "";
  if (pattern.n < 1 || pattern.m < 1 || pattern.n >= pattern.m) {
    return fmt::format(
        "sparsity pattern {}:{} is invalid: N:M prunes N of every M consecutive inputs and needs "
        "1 <= N < M (e.g. 2:4, 4:8), or use \"unstructured\"",
        pattern.n, pattern.m);
  }
  return "";
}

}  // namespace

SparsityPattern parse_sparsity_pattern(const std::string& text) {
  if (text == "unstructured" || text == "0:0") return {};
  const size_t colon = text.find(':');
  SparsityPattern pattern;
  if (colon == std::string::npos || !parse_count(text.substr(0, colon), pattern.n) ||
      !parse_count(text.substr(colon + 1), pattern.m)) {
    fail_user(
        "sparsity pattern '{}' is not valid: expected \"unstructured\" (or \"0:0\") or \"N:M\" "
        "with whole numbers 1 <= N < M, N zeros in every M consecutive inputs (e.g. \"2:4\")",
        text);
  }
  if (pattern.n == 0 && pattern.m == 0) return {};
  const std::string problem = pattern_problem(pattern);
  if (!problem.empty()) fail_user("sparsity pattern '{}': {}", text, problem);
  return pattern;
}

std::string sparsity_pattern_name(const SparsityPattern& pattern) {
  if (!pattern.structured()) return "unstructured";
  return fmt::format("{}:{}", pattern.n, pattern.m);
}

void validate_pattern(const SparsityPattern& pattern) {
  const std::string problem = pattern_problem(pattern);
  if (!problem.empty()) throw UserError(problem);
}

void validate_pattern(const SparsityPattern& pattern, int64_t in_features,
                      const std::string& tensor_name) {
  const std::string where =
      tensor_name.empty() ? "weight" : fmt::format("tensor '{}'", tensor_name);
  const std::string problem = pattern_problem(pattern);
  if (!problem.empty()) fail_user("{}: {}", where, problem);
  if (pattern.structured() && in_features % pattern.m != 0) {
    fail_user(
        "{}: sparsity pattern {} needs the input width to be a multiple of {}, but it has {} "
        "columns",
        where, sparsity_pattern_name(pattern), pattern.m, in_features);
  }
}

}  // namespace presso

#include "lib/quant/scheme.h"

#include <fmt/format.h>

#include <vector>

#include "lib/common/errors.h"

namespace presso {
namespace {

std::vector<std::string> scheme_problems(const QuantScheme& scheme) {
  std::vector<std::string> problems;
  if (scheme.bits < 2 || scheme.bits > 8) {
    problems.push_back(fmt::format("bits {} is out of range (valid: 2..8)", scheme.bits));
  }
  if (scheme.group_size != -1 && scheme.group_size <= 0) {
    problems.push_back(fmt::format(
        "group_size {} is invalid (valid: a positive column count, or -1 for per channel)",
        scheme.group_size));
  }
  return problems;
}

[[noreturn]] void fail_with(const std::vector<std::string>& problems, const std::string& name) {
  std::string message = name.empty() ? "quantization scheme" : fmt::format("tensor '{}'", name);
  message += problems.size() == 1 ? ": " : fmt::format(": {} problems:", problems.size());
  for (size_t i = 0; i < problems.size(); ++i) {
    message += problems.size() == 1 ? problems[i] : "\n  - " + problems[i];
  }
  throw UserError(message);
}

}  // namespace

void validate_scheme(const QuantScheme& scheme) {
  const auto problems = scheme_problems(scheme);
  if (!problems.empty()) fail_with(problems, "");
}

void validate_scheme(const QuantScheme& scheme, int64_t in_features,
                     const std::string& tensor_name) {
  auto problems = scheme_problems(scheme);
  if (in_features <= 0) {
    problems.push_back(fmt::format("input width {} is not positive", in_features));
  } else if (scheme.group_size > 0 && in_features % scheme.group_size != 0) {
    problems.push_back(
        fmt::format("group_size {} does not divide the input width {} (use a divisor of {}, or -1)",
                    scheme.group_size, in_features, in_features));
  }
  if (!problems.empty()) fail_with(problems, tensor_name);
}

int64_t effective_group_size(const QuantScheme& scheme, int64_t in_features) {
  return scheme.group_size == -1 ? in_features : scheme.group_size;
}

int64_t group_count(const QuantScheme& scheme, int64_t in_features) {
  return in_features / effective_group_size(scheme, in_features);
}

std::string scheme_description(const QuantScheme& scheme) {
  return fmt::format("{}-bit {} {}", scheme.bits, scheme.symmetric ? "symmetric" : "asymmetric",
                     scheme.group_size == -1 ? std::string("per channel")
                                             : fmt::format("group {}", scheme.group_size));
}

}  // namespace presso

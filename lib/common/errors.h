// lib/common: errors, logging and progress shared by every layer, and the guards on user input
// (files.h, json_input.h, bounded_regex.h). Includes nothing of presso; may use fmt,
// nlohmann-json and PCRE2.
//
// The error hierarchy maps to the process exit code of the CLI:
//   UserError       bad input (file, recipe, flag) -> exit 2
//   RegressionError a gate found a regression      -> exit 1
//   InternalError   a bug or an impossible state    -> exit 3
// Messages say what, where and what would be valid, e.g.
//   "model.safetensors: tensor 'x': data offsets [120, 90) are reversed".
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace presso {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, int exit_code)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

class UserError : public Error {
 public:
  explicit UserError(const std::string& message) : Error(message, 2) {}
};

class RegressionError : public Error {
 public:
  explicit RegressionError(const std::string& message) : Error(message, 1) {}
};

class InternalError : public Error {
 public:
  explicit InternalError(const std::string& message) : Error(message, 3) {}
};

// Throws UserError with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail_user(fmt::format_string<Args...> format, Args&&... args) {
  throw UserError(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void fail_internal(fmt::format_string<Args...> format, Args&&... args) {
  throw InternalError(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace presso

// Internal to lib/model: typed access to config.json keys for the family parsers. Problems are
// collected (not thrown one by one) so that one UserError can list them all, each naming the file
// and the key. A JSON null counts as absent, as transformers treats `"head_dim": null`.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/model/config.h"

namespace presso {

class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& object, std::string file);

  const std::string& file() const { return file_; }
  bool has(const std::string& key) const;
  // True also for an explicit null, which some keys distinguish from absence (a missing
  // `sliding_window` takes the class default, `null` disables it).
  bool present(const std::string& key) const;

  // Required keys record a problem when absent; every getter records one for a wrong type and
  // then returns the fallback so parsing can go on and find the next problem.
  int64_t required_int(const std::string& key);
  int64_t int_or(const std::string& key, int64_t fallback);
  std::optional<int64_t> optional_int(const std::string& key);
  double number_or(const std::string& key, double fallback);
  std::optional<double> optional_number(const std::string& key);
  bool bool_or(const std::string& key, bool fallback);
  std::string string_or(const std::string& key, const std::string& fallback);
  std::optional<std::vector<std::string>> optional_string_list(const std::string& key);
  // A nested object (e.g. `rope_parameters`), whose keys are reported as "outer.inner".
  std::optional<ConfigReader> optional_object(const std::string& key);

  // Records `value` as a problem unless it is in [1, 2^24] (a size or a count); returns it
  // unchanged, or 0 when it is too large to allocate anything by.
  int64_t positive(const std::string& key, int64_t value);
  // Records `value` as a problem unless it is >= 0 (a norm's epsilon); returns it unchanged.
  double non_negative(const std::string& key, double value);
  void problem(const std::string& key, const std::string& what);
  void throw_if_problems() const;

 private:
  ConfigReader(const nlohmann::json& object, std::string file, std::string prefix,
               std::shared_ptr<std::vector<std::string>> problems);
  const nlohmann::json* find(const std::string& key) const;
  void wrong_type(const std::string& key, const char* expected);

  const nlohmann::json* object_;
  std::string file_;
  std::string prefix_;
  std::shared_ptr<std::vector<std::string>> problems_;
};

// Shared by the rope families: `rope_parameters` (transformers 5) or the legacy `rope_theta` +
// `rope_scaling`, which must mean the same thing.
RopeConfig parse_rope(ConfigReader& reader);
Activation parse_activation(ConfigReader& reader, const std::string& key,
                            const std::string& fallback);

}  // namespace presso

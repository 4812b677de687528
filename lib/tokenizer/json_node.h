// Read access to tokenizer.json that turns every malformed or missing value into a UserError
// naming the file and the key path, e.g. "tokenizer.json: key 'model.merges[3]': ...".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/tokenizer/regex.h"

namespace presso {

class JsonNode {
 public:
  JsonNode(const nlohmann::json& value, std::string file, std::string path)
      : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

  const nlohmann::json& value() const { return *value_; }
  const std::string& path() const { return path_; }
  bool is_null() const { return value_->is_null(); }

  // Whether `key` is present with a non-null value (this node must be an object).
  bool has(const char* key) const;
  // The value at `key`, which must be present (it may be null).
  JsonNode at(const char* key) const;
  // The elements of this node, which must be an array.
  std::vector<JsonNode> elements() const;

  std::string as_string() const;
  int64_t as_int() const;
  bool as_bool() const;

  std::string string_at(const char* key) const { return at(key).as_string(); }
  std::string string_or(const char* key, const std::string& fallback) const;
  bool bool_or(const char* key, bool fallback) const;
  int64_t int_or(const char* key, int64_t fallback) const;
  // A {"String": ...} or {"Regex": ...} pattern object.
  Pattern as_pattern() const;

  // "tokenizer.json: key 'pre_tokenizer.pattern'", the prefix of every message about this node.
  std::string where() const;
  [[noreturn]] void fail(const std::string& message) const;

 private:
  JsonNode child(const nlohmann::json& value, const std::string& suffix) const;
  void require_object() const;

  const nlohmann::json* value_;
  std::string file_;
  std::string path_;
};

}  // namespace presso

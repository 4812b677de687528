#include "lib/tokenizer/json_node.h"

#include <stdexcept>

#include "lib/common/errors.h"

namespace presso {

std::string JsonNode::where() const {
  return fmt::format("{}: key '{}'", file_, path_.empty() ? "(root)" : path_);
}

void JsonNode::fail(const std::string& message) const { fail_user("{}: {}", where(), message); }

JsonNode JsonNode::child(const nlohmann::json& value, const std::string& suffix) const {
  return JsonNode(value, file_,
                  path_.empty() || suffix[0] == '[' ? path_ + suffix : path_ + "." + suffix);
}

void JsonNode::require_object() const {
  if (!value_->is_object()) fail("expected an object, found " + std::string(value_->type_name()));
}

bool JsonNode::has(const char* key) const {
  require_object();
  const auto it = value_->find(key);
  return it != value_->end() && !it->is_null();
}

JsonNode JsonNode::at(const char* key) const {
  require_object();
  const auto it = value_->find(key);
  if (it == value_->end()) child(*value_, key).fail("is missing");
  return child(*it, key);
}

std::vector<JsonNode> JsonNode::elements() const {
  if (!value_->is_array()) fail("expected an array, found " + std::string(value_->type_name()));
  std::vector<JsonNode> out;
  out.reserve(value_->size());
  for (size_t i = 0; i < value_->size(); ++i)
    out.push_back(child((*value_)[i], "[" + std::to_string(i) + "]"));
  return out;
}

std::string JsonNode::as_string() const {
  if (!value_->is_string()) fail("expected a string, found " + std::string(value_->type_name()));
  return value_->get<std::string>();
}

int64_t JsonNode::as_int() const {
  if (!value_->is_number_integer())
    fail("expected an integer, found " + std::string(value_->type_name()));
  return value_->get<int64_t>();
}

bool JsonNode::as_bool() const {
  if (!value_->is_boolean()) fail("expected a boolean, found " + std::string(value_->type_name()));
  return value_->get<bool>();
}

std::string JsonNode::string_or(const char* key, const std::string& fallback) const {
  return has(key) ? string_at(key) : fallback;
}

bool JsonNode::bool_or(const char* key, bool fallback) const {
  return has(key) ? at(key).as_bool() : fallback;
}

int64_t JsonNode::int_or(const char* key, int64_t fallback) const {
  return has(key) ? at(key).as_int() : fallback;
}

Pattern JsonNode::as_pattern() const {
  if (has("String")) return Pattern::literal(string_at("String"));
  if (!has("Regex")) fail("expected a pattern object {\"String\": ...} or {\"Regex\": ...}");
  const JsonNode regex = at("Regex");
  try {
    return Pattern::regex(regex.as_string(), regex.where());
  } catch (const std::invalid_argument& e) {
    regex.fail(e.what());
  }
}

}  // namespace presso

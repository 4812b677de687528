#include "lib/recipe/schema.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <set>

#include "lib/common/errors.h"

namespace presso {
namespace {

// Words a YAML 1.1 or 1.2 reader takes for something other than a string when unquoted.
bool is_yaml_keyword(const std::string& text) {
  static const std::set<std::string> kWords = {
      "true", "True", "TRUE", "false", "False", "FALSE", "yes",  "Yes", "YES",
      "no",   "No",   "NO",   "on",    "On",    "ON",    "off",  "Off", "OFF",
      "y",    "Y",    "n",    "N",     "null",  "Null",  "NULL", "~"};
  return kWords.count(text) > 0;
}

// Plain (unquoted) only when no YAML reader could take it for a number, a keyword or syntax.
std::string yaml_string(const std::string& text) {
  bool plain = !text.empty() && !is_yaml_keyword(text) &&
               (std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '_');
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-' &&
        c != '/') {
      plain = false;
    }
  }
  if (plain) return text;
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string yaml_string_list(const std::vector<std::string>& list) {
  std::string out = "[";
  for (size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + yaml_string(list[i]);
  return out + "]";
}

std::string value_type_name(const OptionValue& value) {
  static const char* kNames[] = {"bool", "int", "float", "string", "string list", "mapping list"};
  return kNames[value.index()];
}

}  // namespace

std::string option_type_name(OptionType type) {
  switch (type) {
    case OptionType::kBool:
      return "true or false";
    case OptionType::kInt:
      return "an integer";
    case OptionType::kFloat:
      return "a number";
    case OptionType::kString:
      return "a string";
    case OptionType::kStringList:
      return "a list of strings";
    case OptionType::kEnum:
      return "one of a set of words";
    case OptionType::kMappingList:
      return "a list of {smooth_layer, balance_layers} mappings";
  }
  return "?";
}

std::string format_option_value(const OptionValue& value) {
  struct Visitor {
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      // Shortest text that reads back to the same double, so printing round-trips exactly;
      // ".0" keeps it a float for readers that type by the look of the text.
      std::string text = fmt::format("{}", v);
      if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
      return text;
    }
    std::string operator()(const std::string& v) const { return yaml_string(v); }
    std::string operator()(const std::vector<std::string>& v) const { return yaml_string_list(v); }
    std::string operator()(const std::vector<LayerMapping>& v) const {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        out += fmt::format("{}{{smooth_layer: {}, balance_layers: {}}}", i ? ", " : "",
                           yaml_string(v[i].smooth_layer), yaml_string_list(v[i].balance_layers));
      }
      return out + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

namespace {

OptionSpec make_option(std::string key, OptionType type, OptionValue default_value,
                       std::string doc) {
  OptionSpec spec;
  spec.key = std::move(key);
  spec.type = type;
  spec.default_value = std::move(default_value);
  spec.doc = std::move(doc);
  return spec;
}

}  // namespace

OptionSpec bool_option(std::string key, bool default_value, std::string doc) {
  return make_option(std::move(key), OptionType::kBool, default_value, std::move(doc));
}

OptionSpec int_option(std::string key, int64_t default_value, std::optional<double> min,
                      std::optional<double> max, std::string doc) {
  OptionSpec spec = make_option(std::move(key), OptionType::kInt, default_value, std::move(doc));
  spec.min = min;
  spec.max = max;
  return spec;
}

OptionSpec float_option(std::string key, double default_value, std::optional<double> min,
                        std::optional<double> max, std::string doc) {
  OptionSpec spec = make_option(std::move(key), OptionType::kFloat, default_value, std::move(doc));
  spec.min = min;
  spec.max = max;
  return spec;
}

OptionSpec enum_option(std::string key, std::string default_value, std::vector<std::string> allowed,
                       std::string doc) {
  OptionSpec spec =
      make_option(std::move(key), OptionType::kEnum, std::move(default_value), std::move(doc));
  spec.allowed = std::move(allowed);
  return spec;
}

OptionSpec string_option(std::string key, std::string default_value, std::string doc) {
  return make_option(std::move(key), OptionType::kString, std::move(default_value), std::move(doc));
}

OptionSpec string_list_option(std::string key, std::vector<std::string> default_value,
                              std::string doc) {
  return make_option(std::move(key), OptionType::kStringList, std::move(default_value),
                     std::move(doc));
}

void PassOptions::set(const std::string& key, OptionValue value) {
  for (auto& entry : entries_) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(key, std::move(value));
}

bool PassOptions::has(const std::string& key) const {
  for (const auto& entry : entries_) {
    if (entry.first == key) return true;
  }
  return false;
}

const OptionValue& PassOptions::get(const std::string& key) const {
  for (const auto& entry : entries_) {
    if (entry.first == key) return entry.second;
  }
  fail_internal(
      "pass option '{}' is not set (is it in the pass's schema, and required or "
      "defaulted?)",
      key);
}

namespace {
template <typename T>
const T& get_as(const OptionValue& value, const std::string& key, const char* wanted) {
  if (const T* typed = std::get_if<T>(&value)) return *typed;
  fail_internal("pass option '{}' holds a {}, not a {}", key, value_type_name(value), wanted);
}
}  // namespace

bool PassOptions::get_bool(const std::string& key) const {
  return get_as<bool>(get(key), key, "bool");
}
int64_t PassOptions::get_int(const std::string& key) const {
  return get_as<int64_t>(get(key), key, "int");
}
double PassOptions::get_float(const std::string& key) const {
  return get_as<double>(get(key), key, "float");
}
const std::string& PassOptions::get_string(const std::string& key) const {
  return get_as<std::string>(get(key), key, "string");
}
const std::vector<std::string>& PassOptions::get_strings(const std::string& key) const {
  return get_as<std::vector<std::string>>(get(key), key, "string list");
}
const std::vector<LayerMapping>& PassOptions::get_mappings(const std::string& key) const {
  return get_as<std::vector<LayerMapping>>(get(key), key, "mapping list");
}

const OptionSpec* PassSchema::find(const std::string& key) const {
  for (const auto& spec : options) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

std::string describe_schema(const PassSchema& schema) {
  std::string out = fmt::format("{}: {}\n", schema.name, schema.summary);
  for (const auto& spec : schema.options) {
    std::string type = spec.type == OptionType::kEnum
                           ? fmt::format("one of {}", fmt::join(spec.allowed, "|"))
                           : option_type_name(spec.type);
    if (spec.min || spec.max) {
      type += fmt::format(" in [{}, {}]", spec.min ? fmt::format("{}", *spec.min) : "-inf",
                          spec.max ? fmt::format("{}", *spec.max) : "inf");
    }
    std::string fallback = spec.default_value
                               ? "default " + format_option_value(*spec.default_value)
                           : spec.required ? "required"
                                           : "optional";
    out += fmt::format("  {:<16} {}; {}. {}\n", spec.key, type, fallback, spec.doc);
  }
  if (!schema.modifiers.empty()) {
    std::vector<std::string> names;
    for (const auto& modifier : schema.modifiers) names.push_back(modifier.modifier);
    out += fmt::format("  from llm-compressor's {}\n", fmt::join(names, ", "));
  }
  return out;
}

}  // namespace presso

// Option schemas: how a pass declares its recipe options as data, and the typed options a recipe
// entry is validated into. Torch-free; see recipe.h for what the layer owns.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "lib/recipe/modifier_translation.h"

namespace presso {

// One smoothing mapping of AWQ: the layer whose output is scaled down (a norm or a linear) and
// the linears reading that output, which are scaled up. Same spelling as llm-compressor's
// AWQMapping (src/llmcompressor/modifiers/transform/awq/mappings.py).
struct LayerMapping {
  std::string smooth_layer;
  std::vector<std::string> balance_layers;
  bool operator==(const LayerMapping& other) const {
    return smooth_layer == other.smooth_layer && balance_layers == other.balance_layers;
  }
};

enum class OptionType { kBool, kInt, kFloat, kString, kStringList, kEnum, kMappingList };

// Name of a type as messages spell it: "an integer", "a list of strings", ...
std::string option_type_name(OptionType type);

// kEnum values are held as std::string, kInt as int64_t.
using OptionValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>,
                                 std::vector<LayerMapping>>;

// The value as canonical YAML text in flow style: 4, 0.01, true, "re:.*", [a, b].
std::string format_option_value(const OptionValue& value);

// A linear layer of the model a recipe is resolved against.
struct LinearInfo {
  std::string name;  // "model.layers.3.self_attn.q_proj"
  int64_t out_features = 0;
  int64_t in_features = 0;
  // False for linears outside the decoder blocks (lm_head): broad targets such as `Linear` or
  // `re:.*` leave them alone; only a pattern that names them selects them.
  bool in_block = true;
};

struct OptionSpec {
  std::string key;
  OptionType type = OptionType::kBool;
  // The value used when the key is absent. Without one, the key is required when `required`,
  // else it stays absent (PassOptions::has says so).
  std::optional<OptionValue> default_value;
  bool required = false;
  std::optional<double> min;  // inclusive bounds of kInt and kFloat values
  std::optional<double> max;
  std::vector<std::string> allowed;  // the values of a kEnum
  std::string doc;                   // one line, for `presso list`
  // A rule on this value alone that bounds cannot say; returns the problem, or "" when fine.
  std::function<std::string(const OptionValue&)> check;
};

// Builders for the common shapes of option, so that schemas read as tables.
OptionSpec bool_option(std::string key, bool default_value, std::string doc);
OptionSpec int_option(std::string key, int64_t default_value, std::optional<double> min,
                      std::optional<double> max, std::string doc);
OptionSpec float_option(std::string key, double default_value, std::optional<double> min,
                        std::optional<double> max, std::string doc);
OptionSpec enum_option(std::string key, std::string default_value, std::vector<std::string> allowed,
                       std::string doc);
OptionSpec string_option(std::string key, std::string default_value, std::string doc);
OptionSpec string_list_option(std::string key, std::vector<std::string> default_value,
                              std::string doc);

// A pass's options after validation: every key of its schema (defaults filled), in schema order.
class PassOptions {
 public:
  void set(const std::string& key, OptionValue value);
  bool has(const std::string& key) const;
  // Typed getters; InternalError when the key is absent or holds another type (a pass asking
  // for what its own schema does not declare is a bug, not a user error).
  bool get_bool(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;  // kString and kEnum
  const std::vector<std::string>& get_strings(const std::string& key) const;
  const std::vector<LayerMapping>& get_mappings(const std::string& key) const;
  const std::vector<std::pair<std::string, OptionValue>>& entries() const { return entries_; }
  bool operator==(const PassOptions& other) const { return entries_ == other.entries_; }
  bool operator!=(const PassOptions& other) const { return !(*this == other); }

 private:
  const OptionValue& get(const std::string& key) const;
  std::vector<std::pair<std::string, OptionValue>> entries_;
};

// A problem found by a cross-key check: the key it is reported at, and what is wrong.
struct OptionProblem {
  std::string key;
  std::string message;
};

struct PassSchema {
  std::string name;     // the pass name in our recipes: "gptq"
  std::string summary;  // one line
  std::vector<OptionSpec> options;
  // Rules across keys (e.g. static_groups: false needs act_order); run only once every key on
  // its own is valid.
  std::function<std::vector<OptionProblem>(const PassOptions&)> cross_check;
  // Rules that need the model: run per targeted linear when a recipe is resolved; each string
  // is a problem, e.g. a group size that does not divide the input width.
  std::function<std::vector<std::string>(const PassOptions&, const LinearInfo&)> shape_check;
  // Keys shown beside the pass name in the per-layer plan; empty shows every key but targets
  // and ignore.
  std::vector<std::string> plan_keys;
  // The llm-compressor modifiers that translate to this pass (see modifier_translation.h);
  // a modifier is listed by one pass at most.
  std::vector<ModifierTranslation> modifiers;

  const OptionSpec* find(const std::string& key) const;
};

// The schema as text for `presso list`: name, summary, then one line per option with its type,
// default (or "required") and doc.
std::string describe_schema(const PassSchema& schema);

}  // namespace presso

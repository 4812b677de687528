#include "lib/model/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/model/config_reader.h"
#include "lib/model/family.h"

namespace presso {
namespace {

using nlohmann::json;

std::string describe_json(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return fmt::format("{} ({})", text, value.type_name());
}

}  // namespace

const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::kSilu:
      return "silu";
    case Activation::kRelu:
      return "relu";
    case Activation::kGelu:
      return "gelu";
    case Activation::kGeluTanh:
      return "gelu_tanh";
  }
  return "?";
}

const char* rope_type_name(RopeType type) {
  switch (type) {
    case RopeType::kDefault:
      return "default";
    case RopeType::kLinear:
      return "linear";
    case RopeType::kLlama3:
      return "llama3";
  }
  return "?";
}

bool RopeConfig::operator==(const RopeConfig& other) const {
  return type == other.type && theta == other.theta && factor == other.factor &&
         low_freq_factor == other.low_freq_factor && high_freq_factor == other.high_freq_factor &&
         original_max_position_embeddings == other.original_max_position_embeddings;
}

ConfigReader::ConfigReader(const json& object, std::string file)
    : ConfigReader(object, std::move(file), "", std::make_shared<std::vector<std::string>>()) {}

ConfigReader::ConfigReader(const json& object, std::string file, std::string prefix,
                           std::shared_ptr<std::vector<std::string>> problems)
    : object_(&object),
      file_(std::move(file)),
      prefix_(std::move(prefix)),
      problems_(std::move(problems)) {}

const json* ConfigReader::find(const std::string& key) const {
  auto it = object_->find(key);
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool ConfigReader::has(const std::string& key) const { return find(key) != nullptr; }

bool ConfigReader::present(const std::string& key) const {
  return object_->find(key) != object_->end();
}

void ConfigReader::problem(const std::string& key, const std::string& what) {
  problems_->push_back(fmt::format("{}: key '{}{}': {}", file_, prefix_, key, what));
}

void ConfigReader::wrong_type(const std::string& key, const char* expected) {
  problem(key, fmt::format("expected {}, got {}", expected, describe_json(*find(key))));
}

void ConfigReader::throw_if_problems() const {
  if (problems_->empty()) return;
  if (problems_->size() == 1) throw UserError(problems_->front());
  std::string message = fmt::format("{} has {} problems:", file_, problems_->size());
  for (const auto& p : *problems_) message += "\n  " + p;
  throw UserError(message);
}

std::optional<int64_t> ConfigReader::optional_int(const std::string& key) {
  const json* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_integer()) {
    wrong_type(key, "an integer");
    return std::nullopt;
  }
  return value->get<int64_t>();
}

int64_t ConfigReader::required_int(const std::string& key) {
  if (!has(key)) {
    problem(key, "missing (required integer)");
    return 0;
  }
  return optional_int(key).value_or(0);
}

int64_t ConfigReader::int_or(const std::string& key, int64_t fallback) {
  return optional_int(key).value_or(fallback);
}

std::optional<double> ConfigReader::optional_number(const std::string& key) {
  const json* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) {
    wrong_type(key, "a number");
    return std::nullopt;
  }
  return value->get<double>();
}

double ConfigReader::number_or(const std::string& key, double fallback) {
  return optional_number(key).value_or(fallback);
}

bool ConfigReader::bool_or(const std::string& key, bool fallback) {
  const json* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    wrong_type(key, "true or false");
    return fallback;
  }
  return value->get<bool>();
}

std::string ConfigReader::string_or(const std::string& key, const std::string& fallback) {
  const json* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_string()) {
    wrong_type(key, "a string");
    return fallback;
  }
  return value->get<std::string>();
}

std::optional<std::vector<std::string>> ConfigReader::optional_string_list(const std::string& key) {
  const json* value = find(key);
  if (value == nullptr) return std::nullopt;
  bool ok = value->is_array();
  for (size_t i = 0; ok && i < value->size(); ++i) ok = (*value)[i].is_string();
  if (!ok) {
    wrong_type(key, "a list of strings");
    return std::nullopt;
  }
  return value->get<std::vector<std::string>>();
}

std::optional<ConfigReader> ConfigReader::optional_object(const std::string& key) {
  const json* value = find(key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_object()) {
    wrong_type(key, "an object");
    return std::nullopt;
  }
  return ConfigReader(*value, file_, prefix_ + key + ".", problems_);
}

int64_t ConfigReader::positive(const std::string& key, int64_t value) {
  // A missing key was reported already (value 0 then); report only present, bad values.
  if (value <= 0 && has(key)) problem(key, fmt::format("must be > 0, got {}", value));
  // Sizes and counts are allocated from (per-layer tables, the block list) before any tensor is
  // compared with them: 1e12 layers was a bad_alloc. 2^24 is far above any real model's.
  constexpr int64_t kMaxSize = int64_t{1} << 24;
  if (value > kMaxSize) {
    problem(key, fmt::format("{} is larger than any model has (at most {})", value, kMaxSize));
    return 0;
  }
  return value;
}

double ConfigReader::non_negative(const std::string& key, double value) {
  // A negative epsilon makes a norm divide by the root of a negative number: NaN everywhere.
  if (value < 0 && has(key)) problem(key, fmt::format("must be >= 0, got {}", value));
  return value;
}

RopeConfig parse_rope(ConfigReader& reader) {
  // transformers 5 writes `rope_parameters` (theta inside); older configs carry `rope_theta` at
  // the top level and the scaling in `rope_scaling`, whose type key was once called `type`.
  RopeConfig rope;
  rope.theta = reader.number_or("rope_theta", 10000.0);
  // Rotating only part of each head is not implemented; refuse rather than silently rotate all.
  auto refuse_partial = [](ConfigReader& r) {
    const double partial = r.number_or("partial_rotary_factor", 1.0);
    if (partial != 1.0)
      r.problem("partial_rotary_factor", fmt::format("{} is not supported (only 1)", partial));
  };
  refuse_partial(reader);
  std::optional<ConfigReader> params = reader.optional_object("rope_parameters");
  if (!params) params = reader.optional_object("rope_scaling");
  if (!params) return rope;
  ConfigReader& p = *params;
  refuse_partial(p);
  rope.theta = p.number_or("rope_theta", rope.theta);
  const std::string type_key = p.has("rope_type") || !p.has("type") ? "rope_type" : "type";
  const std::string type = p.string_or(type_key, "default");
  if (type == "default") {
    rope.type = RopeType::kDefault;
  } else if (type == "linear") {
    rope.type = RopeType::kLinear;
  } else if (type == "llama3") {
    rope.type = RopeType::kLlama3;
  } else {
    const bool known = type == "dynamic" || type == "yarn" || type == "longrope";
    p.problem(type_key, fmt::format("rope type '{}' is {} (supported: default, linear, llama3)",
                                    type, known ? "not implemented in presso" : "unknown"));
    return rope;
  }
  if (rope.theta <= 0) p.problem("rope_theta", fmt::format("must be > 0, got {}", rope.theta));
  if (rope.type == RopeType::kDefault) return rope;
  if (!p.has("factor")) p.problem("factor", fmt::format("required by rope type '{}'", type));
  rope.factor = p.number_or("factor", 1.0);
  if (rope.factor <= 0) p.problem("factor", fmt::format("must be > 0, got {}", rope.factor));
  if (rope.type == RopeType::kLlama3) {
    for (const char* key :
         {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!p.has(key)) p.problem(key, "required by rope type 'llama3'");
    }
    rope.low_freq_factor = p.number_or("low_freq_factor", 1.0);
    rope.high_freq_factor = p.number_or("high_freq_factor", 4.0);
    rope.original_max_position_embeddings = p.positive(
        "original_max_position_embeddings", p.int_or("original_max_position_embeddings", 0));
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      p.problem("high_freq_factor", fmt::format("must exceed low_freq_factor ({} <= {})",
                                                rope.high_freq_factor, rope.low_freq_factor));
    }
  }
  return rope;
}

Activation parse_activation(ConfigReader& reader, const std::string& key,
                            const std::string& fallback) {
  const std::string name = reader.string_or(key, fallback);
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "relu") return Activation::kRelu;
  if (name == "gelu") return Activation::kGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::kGeluTanh;
  reader.problem(key, fmt::format("activation '{}' is not supported (supported: gelu, gelu_new, "
                                  "gelu_pytorch_tanh, relu, silu, swish)",
                                  name));
  return Activation::kSilu;
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& file) {
  const json root = parse_json_input(json_text, file);
  if (!root.is_object()) fail_user("{}: expected a JSON object, got {}", file, root.type_name());
  ConfigReader reader(root, file);
  ModelConfig config;
  config.path = file;
  config.model_type = reader.string_or("model_type", "");
  if (!reader.has("model_type")) reader.problem("model_type", "missing (required string)");
  reader.throw_if_problems();
  const FamilyEntry* family = find_family(config.model_type);
  if (family == nullptr) {
    fail_user("{}: key 'model_type': '{}' is not supported (supported: {})", file,
              config.model_type, fmt::join(supported_model_types(), ", "));
  }
  config.family = family->name;
  family->parse_config(reader, config);
  // An id, or a list of ids (Llama 3 lists several); the first one separates documents.
  if (auto eos = root.find("eos_token_id"); eos != root.end()) {
    if (eos->is_number_integer()) {
      config.eos_token_id = eos->get<int64_t>();
    } else if (eos->is_array() && !eos->empty() && eos->front().is_number_integer()) {
      config.eos_token_id = eos->front().get<int64_t>();
    }
  }
  if (auto q = root.find("quantization_config"); q != root.end() && !q->is_null()) {
    config.quantization_config = q->dump();
  }
  for (const char* key : {"dtype", "torch_dtype"}) {
    auto d = root.find(key);
    if (d != root.end() && d->is_string() && config.dtype.empty()) config.dtype = *d;
  }
  reader.throw_if_problems();
  return config;
}

ModelConfig load_model_config(const std::string& model_dir) {
  const auto path = std::filesystem::path(model_dir) / "config.json";
  if (!std::filesystem::exists(path)) {
    fail_user("{}: no config.json here (expected a Hugging Face model directory)", model_dir);
  }
  return parse_model_config(read_file_bytes(path.string()), path.string());
}

}  // namespace presso

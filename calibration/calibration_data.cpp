#include "calibration/calibration_data.h"

#include <torch/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/io/safetensors.h"
#include "lib/tokenizer/tokenizer.h"

namespace presso {
namespace {

using nlohmann::json;

constexpr const char* kFormatNames = "auto, text, jsonl, safetensors, json-ids";

// nlohmann's messages start with "[json.exception.parse_error.101] "; the user needs the rest.
std::string json_error_text(const json::exception& e) {
  const std::string text = e.what();
  const size_t close = text.find("] ");
  return close == std::string::npos ? text : text.substr(close + 2);
}

std::string_view strip_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
  return line;
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::string key_list(const json& object) {
  std::string keys;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (!keys.empty()) keys += ", ";
    keys += "'" + it.key() + "'";
  }
  return keys.empty() ? "none" : keys;
}

void check_vocab_size(const std::string& path, int64_t vocab_size) {
  if (vocab_size < 1)
    fail_internal("{}: vocabulary size {} given for the id check", path, vocab_size);
}

// Appends the id at `where` to `ids` after checking that it is an integer in [0, vocab_size).
void append_json_id(const std::string& path, const std::string& where, const json& value,
                    int64_t vocab_size, std::vector<int32_t>& ids) {
  if (!value.is_number_integer())
    fail_user("{}: element {} is {} ({}), expected an integer token id", path, where,
              value.type_name(), value.dump());
  const bool in_range = value.is_number_unsigned()
                            ? value.get<uint64_t>() < static_cast<uint64_t>(vocab_size)
                            : value.get<int64_t>() >= 0 && value.get<int64_t>() < vocab_size;
  if (!in_range)
    fail_user("{}: element {} is {}, outside the vocabulary [0, {})", path, where, value.dump(),
              vocab_size);
  ids.push_back(static_cast<int32_t>(value.get<int64_t>()));
}

}  // namespace

CalibFormat calib_format_from_name(const std::string& name) {
  if (name == "auto") return CalibFormat::kAuto;
  if (name == "text") return CalibFormat::kText;
  if (name == "jsonl") return CalibFormat::kJsonl;
  if (name == "safetensors") return CalibFormat::kSafetensors;
  if (name == "json-ids") return CalibFormat::kJsonIds;
  fail_user("unknown calibration data format '{}' (valid: {})", name, kFormatNames);
}

const char* calib_format_name(CalibFormat format) {
  switch (format) {
    case CalibFormat::kAuto:
      return "auto";
    case CalibFormat::kText:
      return "text";
    case CalibFormat::kJsonl:
      return "jsonl";
    case CalibFormat::kSafetensors:
      return "safetensors";
    case CalibFormat::kJsonIds:
      return "json-ids";
  }
  fail_internal("calib_format_name: format {} out of range", static_cast<int>(format));
}

CalibFormat detect_calib_format(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".jsonl") return CalibFormat::kJsonl;
  if (ext == ".safetensors") return CalibFormat::kSafetensors;
  if (ext == ".json") return CalibFormat::kJsonIds;
  return CalibFormat::kText;
}

std::vector<std::string> read_jsonl_texts(const std::string& path, const std::string& field) {
  return parse_jsonl_texts(read_file_bytes(path), path, field);
}

std::vector<std::string> parse_jsonl_texts(std::string_view bytes, const std::string& path,
                                           const std::string& field) {
  std::vector<std::string> texts;
  size_t line_number = 0;
  for (size_t begin = 0; begin < bytes.size();) {
    const size_t end = std::min(bytes.find('\n', begin), bytes.size());
    const std::string_view line = strip_line(bytes.substr(begin, end - begin));
    begin = end + 1;
    ++line_number;
    if (is_blank(line)) continue;
    check_json_nesting(line, fmt::format("{}:{}", path, line_number));
    json object;
    try {
      object = json::parse(line.begin(), line.end());
    } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e400
      fail_user("{}:{}: invalid JSON: {}", path, line_number, json_error_text(e));
    }
    if (!object.is_object())
      fail_user("{}:{}: line is a JSON {}, expected an object with a '{}' field", path, line_number,
                object.type_name(), field);
    const auto it = object.find(field);
    if (it == object.end())
      fail_user(
          "{}:{}: field '{}' is missing (keys present: {}; choose the field with "
          "--calib-field)",
          path, line_number, field, key_list(object));
    if (!it->is_string())
      fail_user("{}:{}: field '{}' is a JSON {}, expected a string", path, line_number, field,
                it->type_name());
    texts.push_back(it->get<std::string>());
  }
  if (texts.empty()) fail_user("{}: no documents (the file is empty or blank)", path);
  return texts;
}

std::vector<int32_t> tokenize_documents(const std::vector<std::string>& texts,
                                        const Tokenizer& tokenizer,
                                        std::optional<int32_t> separator) {
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i > 0 && separator) tokens.push_back(*separator);
    const std::vector<int32_t> ids = tokenizer.encode(texts[i], /*add_special_tokens=*/false);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  }
  return tokens;
}

std::vector<int32_t> read_safetensors_ids(const std::string& path, int64_t vocab_size) {
  check_vocab_size(path, vocab_size);
  const SafetensorsFile file(path);
  if (!file.contains("input_ids")) {
    std::string names;
    for (const std::string& name : file.names())
      names += (names.empty() ? "'" : ", '") + name + "'";
    fail_user("{}: no tensor 'input_ids' (tensors present: {})", path,
              names.empty() ? "none" : names);
  }
  const TensorInfo& info = file.info("input_ids");
  switch (info.dtype) {
    case StDtype::I64:
    case StDtype::I32:
    case StDtype::I16:
    case StDtype::I8:
    case StDtype::U8:
      break;
    default:
      fail_user(
          "{}: tensor 'input_ids' has dtype {}, expected an integer type (I64, I32, I16, "
          "I8, U8)",
          path, st_dtype_name(info.dtype));
  }
  if (info.shape.empty() || info.shape.size() > 2)
    fail_user("{}: tensor 'input_ids' has {} dimensions, expected [N] or [rows, T]", path,
              info.shape.size());
  torch::Tensor ids = file.load("input_ids", torch::kInt64);  // [N] or [rows, T]
  // Row index and column of each id, for error messages, before padding is dropped.
  const int64_t row_length = info.shape.back();
  torch::Tensor position = torch::arange(ids.numel(), torch::kInt64);
  if (file.contains("attention_mask")) {
    const TensorInfo& mask_info = file.info("attention_mask");
    if (mask_info.shape != info.shape)
      fail_user("{}: tensor 'attention_mask' has a different shape from 'input_ids'", path);
    const torch::Tensor keep = file.load("attention_mask", torch::kInt64).reshape(-1).ne(0);
    ids = ids.reshape(-1).masked_select(keep);
    position = position.masked_select(keep);
  }
  ids = ids.reshape(-1).contiguous();
  const torch::Tensor bad = (ids < 0).logical_or(ids >= vocab_size).nonzero();
  if (bad.numel() > 0) {
    const int64_t index = bad[0][0].item<int64_t>();
    const int64_t flat = position[index].item<int64_t>();
    const std::string where = info.shape.size() == 1
                                  ? fmt::format("[{}]", flat)
                                  : fmt::format("[{}, {}]", flat / row_length, flat % row_length);
    fail_user(
        "{}: tensor 'input_ids'{} = {} is outside the vocabulary [0, {}) ({} ids out of "
        "range)",
        path, where, ids[index].item<int64_t>(), vocab_size, bad.size(0));
  }
  const torch::Tensor ids32 = ids.to(torch::kInt32);
  const int32_t* data = ids32.data_ptr<int32_t>();
  return std::vector<int32_t>(data, data + ids32.numel());
}

std::vector<int32_t> read_json_ids(const std::string& path, int64_t vocab_size) {
  return parse_json_ids(read_file_bytes(path), path, vocab_size);
}

std::vector<int32_t> parse_json_ids(std::string_view bytes, const std::string& path,
                                    int64_t vocab_size) {
  check_vocab_size(path, vocab_size);
  if (is_blank(bytes)) fail_user("{}: empty file", path);
  check_json_nesting(bytes, path);
  json root;
  try {
    root = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e400
    fail_user("{}: invalid JSON: {}", path, json_error_text(e));
  }
  if (!root.is_array())
    fail_user("{}: the file holds a JSON {}, expected a list of token ids or a list of lists", path,
              root.type_name());
  std::vector<int32_t> ids;
  for (size_t i = 0; i < root.size(); ++i) {
    const json& item = root[i];
    if (!item.is_array()) {
      append_json_id(path, fmt::format("[{}]", i), item, vocab_size, ids);
      continue;
    }
    for (size_t j = 0; j < item.size(); ++j)
      append_json_id(path, fmt::format("[{}][{}]", i, j), item[j], vocab_size, ids);
  }
  if (ids.empty()) fail_user("{}: no token ids (the list is empty)", path);
  return ids;
}

bool calibration_needs_tokenizer(const CalibrationSource& source) {
  const CalibFormat format =
      source.format == CalibFormat::kAuto ? detect_calib_format(source.path) : source.format;
  return format == CalibFormat::kText || format == CalibFormat::kJsonl;
}

std::vector<int32_t> load_calibration_tokens(const CalibrationSource& source,
                                             const Tokenizer* tokenizer) {
  const CalibFormat format =
      source.format == CalibFormat::kAuto ? detect_calib_format(source.path) : source.format;
  if (!tokenizer && (calibration_needs_tokenizer(source) || !source.vocab_size)) {
    fail_internal("load_calibration_tokens: {} needs a tokenizer", source.path);
  }
  const int64_t vocab_size =
      source.vocab_size ? *source.vocab_size : static_cast<int64_t>(tokenizer->vocab_size());
  switch (format) {
    case CalibFormat::kText: {
      const std::string text = read_file_bytes(source.path);
      if (text.empty()) fail_user("{}: empty file", source.path);
      return tokenizer->encode(text, /*add_special_tokens=*/false);
    }
    case CalibFormat::kJsonl:
      return tokenize_documents(read_jsonl_texts(source.path, source.field), *tokenizer,
                                source.document_separator);
    case CalibFormat::kSafetensors:
      return read_safetensors_ids(source.path, vocab_size);
    case CalibFormat::kJsonIds:
      return read_json_ids(source.path, vocab_size);
    case CalibFormat::kAuto:
      break;
  }
  fail_internal("load_calibration_tokens: unresolved format {}", calib_format_name(format));
}

}  // namespace presso

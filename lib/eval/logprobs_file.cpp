#include "lib/eval/logprobs_file.h"

#include <fmt/ranges.h>

#include <map>
#include <vector>

#include "lib/common/errors.h"
#include "lib/io/safetensors.h"

namespace presso {

namespace {

constexpr const char* kFormat = "presso-logprobs";
constexpr const char* kFormatVersion = "1";

const std::string& required(const std::map<std::string, std::string>& metadata,
                            const std::string& path, const std::string& key) {
  const auto it = metadata.find(key);
  if (it == metadata.end())
    fail_user(
        "{}: metadata field '{}' is missing; expected a file written by presso eval "
        "--save-logprobs",
        path, key);
  return it->second;
}

int64_t required_count(const std::map<std::string, std::string>& metadata, const std::string& path,
                       const std::string& key) {
  const std::string& text = required(metadata, path, key);
  try {
    size_t used = 0;
    const int64_t value = std::stoll(text, &used);
    if (used == text.size() && value > 0) return value;
  } catch (const std::exception&) {
  }
  fail_user("{}: metadata field '{}' is '{}', expected a positive integer", path, key, text);
}

torch::Tensor required_tensor(const SafetensorsFile& file, const std::string& name, StDtype dtype,
                              const std::vector<int64_t>& shape) {
  if (!file.contains(name)) fail_user("{}: tensor '{}' is missing", file.path(), name);
  const TensorInfo& info = file.info(name);
  if (info.dtype != dtype || info.shape != shape)
    fail_user("{}: tensor '{}' is {} {}, expected {} {}", file.path(), name,
              st_dtype_name(info.dtype), fmt::join(info.shape, "x"), st_dtype_name(dtype),
              fmt::join(shape, "x"));
  return file.load(name);
}

}  // namespace

void save_logprobs(const std::string& path, const LogProbsFile& file) {
  const LogProbsHeader& h = file.header;
  SafetensorsWriter writer(path, {{"format", kFormat},
                                  {"format_version", kFormatVersion},
                                  {"protocol", h.protocol},
                                  {"seqlen", std::to_string(h.seqlen)},
                                  {"windows", std::to_string(h.windows)},
                                  {"top_k", std::to_string(h.top_k)},
                                  {"model_fingerprint", h.model_fingerprint},
                                  {"data_fingerprint", h.data_fingerprint},
                                  {"tokens_fingerprint", h.tokens_fingerprint},
                                  {"presso_version", h.presso_version}});
  writer.add("tokens", file.rows.tokens.contiguous());
  writer.add("logp", file.rows.logp.contiguous());
  writer.add("rest", file.rows.rest.contiguous());
  writer.add("nll", file.rows.nll.contiguous());
  writer.finish();
}

LogProbsFile load_logprobs(const std::string& path) {
  const SafetensorsFile file(path);  // a truncated file fails its header's tiling check here
  const auto& metadata = file.metadata();
  if (required(metadata, path, "format") != kFormat)
    fail_user("{}: metadata field 'format' is '{}', expected '{}'", path, metadata.at("format"),
              kFormat);
  if (required(metadata, path, "format_version") != kFormatVersion)
    fail_user("{}: metadata field 'format_version' is '{}'; this presso reads version {}", path,
              metadata.at("format_version"), kFormatVersion);
  LogProbsFile out;
  LogProbsHeader& h = out.header;
  h.protocol = required(metadata, path, "protocol");
  h.seqlen = required_count(metadata, path, "seqlen");
  h.windows = required_count(metadata, path, "windows");
  h.top_k = required_count(metadata, path, "top_k");
  h.model_fingerprint = required(metadata, path, "model_fingerprint");
  h.data_fingerprint = required(metadata, path, "data_fingerprint");
  h.tokens_fingerprint = required(metadata, path, "tokens_fingerprint");
  h.presso_version = required(metadata, path, "presso_version");
  if (h.seqlen < 2)
    fail_user("{}: metadata field 'seqlen' is {}, expected at least 2", path, h.seqlen);
  const int64_t rows = h.windows * (h.seqlen - 1);
  out.rows.tokens = required_tensor(file, "tokens", StDtype::I32, {rows, h.top_k});
  out.rows.logp = required_tensor(file, "logp", StDtype::F32, {rows, h.top_k});
  out.rows.rest = required_tensor(file, "rest", StDtype::F32, {rows});
  out.rows.nll = required_tensor(file, "nll", StDtype::F32, {rows});
  return out;
}

}  // namespace presso

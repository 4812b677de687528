// Broken checkpoints made inside a test from the shipped model: a copy with config.json keys
// changed, or with a stored tensor filled with NaN in place; and the quick recipe that the
// end-to-end tests of such inputs compress with.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/common/files.h"
#include "tests/fixtures.h"
#include "tests/temp_dir.h"

namespace presso::test {

// The shipped model and texts, as paths for the CLI.
inline const std::string kShippedModel = (test_data() / "sotu-llama-16m").string();
inline const std::string kShippedCalib = (test_data() / "calib.txt").string();
inline const std::string kShippedEval = (test_data() / "eval.txt").string();

// `pass` (rtn, gptq) on the one linear whose name ends in `linear` ("layers.0.mlp.down_proj"),
// written as `pass`.yaml into `dir`: a whole compress run in about a second.
inline std::string one_linear_recipe(const TempDir& dir, const std::string& pass,
                                     std::string linear) {
  for (size_t at = linear.find('.'); at != std::string::npos; at = linear.find('.', at + 3))
    linear.replace(at, 1, "\\\\.");  // a regex's \. inside a YAML double-quoted string
  return dir.write(pass + ".yaml",
                   "passes:\n  - " + pass + ":\n      targets: [\"re:.*" + linear + "$\"]\n");
}

// The shipped model's files copied into `dir` (created); the weights are linked, not copied,
// unless `copy_weights` (needed to edit them). Returns `dir`.
inline std::string copy_shipped_model(const fs::path& dir, bool copy_weights) {
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(kShippedModel)) {
    const fs::path target = dir / entry.path().filename();
    if (entry.path().extension() == ".safetensors" && !copy_weights) {
      fs::create_symlink(fs::absolute(entry.path()), target);
    } else {
      fs::copy_file(entry.path(), target);
    }
  }
  return dir.string();
}

// Sets `key` of `model_dir`/config.json to `value`.
inline void set_config_key(const fs::path& model_dir, const std::string& key,
                           const nlohmann::json& value) {
  const std::string path = (model_dir / "config.json").string();
  nlohmann::json config = nlohmann::json::parse(read_file_bytes(path));
  config[key] = value;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << config.dump(2);
}

// Overwrites every element of tensor `name` of the safetensors file `file` with NaN, in place
// (F32, F16 or BF16).
inline void fill_with_nan(const std::string& file, const std::string& name) {
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(stream);
  uint64_t header_size = 0;  // little-endian, as on every machine presso runs on
  stream.read(reinterpret_cast<char*>(&header_size), sizeof header_size);
  std::string header(header_size, '\0');
  stream.read(header.data(), static_cast<std::streamsize>(header_size));
  const nlohmann::json entry = nlohmann::json::parse(header).at(name);
  const std::string dtype = entry.at("dtype");
  const uint64_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
  std::string nan;
  if (dtype == "F32") {
    nan = std::string("\x00\x00\xc0\x7f", 4);
  } else if (dtype == "F16") {
    nan = std::string("\x00\x7e", 2);
  } else {
    REQUIRE(dtype == "BF16");
    nan = std::string("\xc0\x7f", 2);
  }
  std::string data;
  while (data.size() < end - begin) data += nan;
  stream.seekp(static_cast<std::streamoff>(sizeof header_size + header_size + begin));
  stream.write(data.data(), static_cast<std::streamsize>(data.size()));
  REQUIRE(stream);
}

}  // namespace presso::test

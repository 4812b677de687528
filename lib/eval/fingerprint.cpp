#include "lib/eval/fingerprint.h"

#include <algorithm>
#include <filesystem>

#include "lib/common/errors.h"
#include "lib/common/sha256.h"

namespace presso {

namespace {

namespace fs = std::filesystem;

// The files of a directory whose bytes decide what a model computes, sorted by name.
std::vector<fs::path> weight_and_config_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool is_config = name == "config.json" || name == "adapter_config.json";
    if (entry.is_regular_file() && (is_config || entry.path().extension() == ".safetensors"))
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::string model_fingerprint(const std::string& model_dir, const std::string& adapter_dir) {
  Sha256 digest;
  for (const std::string& dir : {model_dir, adapter_dir}) {
    if (dir.empty()) continue;
    if (!fs::is_directory(dir)) fail_user("{}: not a directory", dir);
    for (const auto& file : weight_and_config_files(dir))
      digest.update(file.filename().string() + " " + sha256_file_hex(file.string()) + "\n");
    digest.update(std::string("--\n"));
  }
  return digest.hex_digest();
}

std::string tokens_fingerprint(const std::vector<int32_t>& tokens, int64_t count) {
  if (count < 0 || count > static_cast<int64_t>(tokens.size()))
    fail_internal("tokens_fingerprint: {} of {} tokens", count, tokens.size());
  // int32 in host order; presso assumes a little-endian host, as safetensors does.
  return sha256_hex(tokens.data(), static_cast<size_t>(count) * sizeof(int32_t));
}

}  // namespace presso

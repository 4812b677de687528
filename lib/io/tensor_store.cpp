// TensorStore: the tensors of a checkpoint directory, single-file or sharded.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/common/text.h"
#include "lib/io/safetensors.h"

namespace presso {
namespace {

namespace fs = std::filesystem;

const char* const kSingleFileName = "model.safetensors";
const char* const kIndexFileName = "model.safetensors.index.json";

bool is_plain_relative(const fs::path& path) {
  if (path.empty() || path.is_absolute()) return false;
  for (const fs::path& part : path)
    if (part == "..") return false;
  return true;
}

}  // namespace

std::map<std::string, std::string> parse_shard_index(std::string_view text,
                                                     const std::string& source) {
  const auto index = parse_json_input(text, source);
  if (!index.is_object())
    fail_user("{}: is a JSON {}, not an object with a 'weight_map'", source, index.type_name());
  auto weight_map = index.find("weight_map");
  if (weight_map == index.end())
    fail_user("{}: no 'weight_map' (expected {{\"weight_map\": {{tensor: shard file}}}})", source);
  if (!weight_map->is_object() || weight_map->empty())
    fail_user("{}: 'weight_map' is not a non-empty object of tensor: shard file", source);
  std::map<std::string, std::string> shard_of;
  for (const auto& item : weight_map->items()) {
    const nlohmann::json& shard = item.value();
    // A shard must be a file of this directory: an absolute or upward path in a downloaded index
    // could make presso read files the user never meant to hand it.
    if (!shard.is_string() || !is_plain_relative(shard.get<std::string>()))
      fail_user(
          "{}: weight_map entry for tensor '{}' is {}, not a shard file name in the directory",
          source, item.key(), shard.dump());
    shard_of[item.key()] = shard.get<std::string>();
  }
  return shard_of;
}

TensorStore TensorStore::open_dir(const std::string& model_dir) {
  TensorStore store;
  store.dir_ = model_dir;
  fs::path dir(model_dir);
  if (!fs::is_directory(dir))
    fail_user("{}: not a directory (expected a checkpoint directory with {} or {})", model_dir,
              kSingleFileName, kIndexFileName);
  if (fs::exists(dir / kSingleFileName)) {
    auto file = std::make_shared<SafetensorsFile>((dir / kSingleFileName).string());
    store.files_.push_back(file);
    for (const std::string& name : file->names()) store.owner_[name] = 0;
    return store;
  }
  fs::path index_path = dir / kIndexFileName;
  if (!fs::exists(index_path))
    fail_user("{}: no {} or {} in the directory (is it a Hugging Face checkpoint?)", model_dir,
              kSingleFileName, kIndexFileName);
  std::map<std::string, std::string> shard_of =
      parse_shard_index(read_file_bytes(index_path.string()), index_path.string());

  std::map<std::string, size_t> file_index;  // shard file name -> index into files_
  for (const auto& [tensor, shard] : shard_of) {
    if (file_index.count(shard)) continue;
    fs::path shard_path = dir / shard;
    if (!fs::exists(shard_path))
      fail_user("{}: shard '{}' (holding tensor '{}') does not exist", index_path.string(), shard,
                tensor);
    file_index[shard] = store.files_.size();
    store.files_.push_back(std::make_shared<SafetensorsFile>(shard_path.string()));
  }
  std::vector<std::string> absent;
  for (const auto& [tensor, shard] : shard_of) {
    size_t owner = file_index.at(shard);
    if (store.files_[owner]->contains(tensor))
      store.owner_[tensor] = owner;
    else
      absent.push_back(fmt::format("{}: tensor '{}' is listed for shard '{}', which lacks it",
                                   index_path.string(), tensor, shard));
  }
  if (!absent.empty()) {
    std::string message;
    for (const std::string& line : absent) message += (message.empty() ? "" : "\n") + line;
    throw UserError(message);
  }
  return store;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> names;
  names.reserve(owner_.size());
  for (const auto& entry : owner_) names.push_back(entry.first);  // std::map: already sorted
  return names;
}

bool TensorStore::contains(const std::string& name) const { return owner_.count(name) > 0; }

void TensorStore::fail_unknown(const std::string& name) const {
  std::string closest;
  size_t closest_distance = std::max<size_t>(3, name.size() / 4) + 1;  // beyond that, no guess
  for (const auto& entry : owner_) {
    size_t distance = edit_distance(name, entry.first);
    if (distance < closest_distance) {
      closest_distance = distance;
      closest = entry.first;
    }
  }
  std::string hint = closest.empty() ? "" : fmt::format(" (did you mean '{}'?)", closest);
  fail_user("{}: no tensor '{}' in the checkpoint{}", dir_, name, hint);
}

const TensorInfo& TensorStore::info(const std::string& name) const {
  auto found = owner_.find(name);
  if (found == owner_.end()) fail_unknown(name);
  return files_[found->second]->info(name);
}

torch::Tensor TensorStore::load(const std::string& name,
                                std::optional<torch::ScalarType> as) const {
  auto found = owner_.find(name);
  if (found == owner_.end()) fail_unknown(name);
  return files_[found->second]->load(name, as);
}

uint64_t TensorStore::total_bytes() const {
  uint64_t total = 0;
  for (const auto& [name, owner] : owner_) total += files_[owner]->info(name).nbytes();
  return total;
}

std::vector<std::string> TensorStore::files() const {
  std::vector<std::string> paths;
  for (const auto& file : files_) paths.push_back(file->path());
  return paths;
}

}  // namespace presso

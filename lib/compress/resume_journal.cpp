#include "lib/compress/resume_journal.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/common/output_paths.h"
#include "lib/common/version.h"
#include "lib/io/safetensors.h"
#include "lib/quant/quantize.h"

namespace presso {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kJobFile = "job.json";
constexpr const char* kLockFile = "lock";
constexpr const char* kMetadataKey = "presso_block";

std::string record_path(const std::string& dir, int index) {
  return fmt::format("{}/block-{:04d}.safetensors", dir, index);
}

// Size and modification time: enough to tell a replaced or edited input, without reading
// gigabytes to hash them.
json file_stamp(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0)
    fail_user("{}: cannot stat: {}", path, std::strerror(errno));
  return {{"path", normalized_path(path)},
          {"bytes", static_cast<int64_t>(info.st_size)},
          {"modified_ns",
           static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec}};
}

// The keys whose values differ, for the message that says why a journal is not this job's.
std::vector<std::string> differing_keys(const json& recorded, const json& current) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : current.items()) {
    if (!recorded.contains(key) || recorded.at(key) != value) keys.push_back(key);
  }
  for (const auto& [key, value] : recorded.items()) {
    if (!current.contains(key)) keys.push_back(key);
  }
  return keys;
}

json scheme_json(const QuantScheme& scheme) {
  return {
      {"bits", scheme.bits}, {"group_size", scheme.group_size}, {"symmetric", scheme.symmetric}};
}

torch::Tensor cpu(const torch::Tensor& tensor) { return tensor.detach().to(torch::kCPU); }

}  // namespace

std::string ResumeJournal::directory_for(const std::string& output_dir) {
  return normalized_path(output_dir) + ".presso-resume";
}

nlohmann::json resume_identity(const CompressOptions& options, const Model& model,
                               const std::string& canonical_recipe) {
  json model_files = json::array();
  for (const auto& file : model.tensors().files()) model_files.push_back(file_stamp(file));
  model_files.push_back(file_stamp(model.dir() + "/config.json"));
  json calibration = nullptr;
  if (!options.calibration.path.empty()) {
    calibration = file_stamp(options.calibration.path);
    calibration["format"] = calib_format_name(options.calibration.format);
    calibration["field"] = options.calibration.field;
  }
  return {
      {"model", normalized_path(model.dir())},
      {"model_files", model_files},
      {"recipe", canonical_recipe},
      {"format", output_format_name(options.format)},
      {"dense_copy", options.dense_output_dir.empty() ? std::string()
                                                      : normalized_path(options.dense_output_dir)},
      {"merge_adapter", options.merge_adapter},
      {"calibration", calibration},
      {"nsamples", options.nsamples},
      {"seqlen", options.seqlen},
      {"seed", options.seed},
      {"device", options.device},
      {"bf16_activations", options.bf16_activations},
      {"fp32_matmul", options.fp32_matmul},
      {"batch_size", options.batch_size},
      {"presso_commit", build_commit()}};
}

ResumeJournal::ResumeJournal(const CompressOptions& options, const nlohmann::json& identity,
                             const std::function<void(const std::string&)>& warn)
    : dir_(directory_for(options.output_dir)) {
  auto note = [&warn](const std::string& text) {
    if (warn) warn(text);
  };
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) fail_user("{}: cannot create the resume journal: {}", dir_, ec.message());
  const std::string lock = dir_ + "/" + kLockFile;
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) fail_user("{}: cannot open: {}", lock, std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    fail_user("{}: another presso compress is writing {} now; wait for it, or name another output",
              dir_, options.output_dir);
  }

  try {
    open_records(options, identity, note);
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

void ResumeJournal::open_records(const CompressOptions& options, const nlohmann::json& identity,
                                 const std::function<void(const std::string&)>& note) {
  const std::string job = dir_ + "/" + kJobFile;
  std::error_code ec;
  int recorded = 0;
  while (fs::exists(record_path(dir_, recorded), ec)) ++recorded;
  const bool exists = fs::exists(job, ec);
  bool keep = false;
  if (exists) {
    json previous;
    try {
      previous = parse_json_input<json>(read_file_bytes(job), job);
    } catch (const UserError&) {
      previous = json::object();  // a damaged journal is no job's
    }
    const std::vector<std::string> differ = differing_keys(previous, identity);
    if (!differ.empty()) {
      note(fmt::format("discarding {}: it records an interrupted run of another job ({} differ)",
                       dir_, fmt::join(differ, ", ")));
    } else if (options.resume) {
      keep = true;
    } else if (!options.overwrite && recorded > 0) {
      fail_user(
          "{}: an interrupted run of this job recorded {} of its blocks there; pass --resume "
          "to continue it, or --overwrite to start over",
          dir_, recorded);
    }
  } else if (options.resume) {
    note(fmt::format("--resume: no interrupted run of {} was recorded; starting from block 1",
                     options.output_dir));
  }
  // Leftovers of a record being written when the run was killed, and, when starting over, the
  // old records.
  std::vector<std::string> removed;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    const bool partial = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
    if (partial || (!keep && name != kLockFile)) removed.push_back(entry.path().string());
  }
  for (const auto& path : removed) remove_tree(path);
  if (keep) {
    recorded_ = recorded;
    note(recorded == 0 ? "--resume: the interrupted run recorded no block; starting from block 1"
                       : fmt::format("--resume: the interrupted run recorded blocks 1-{}; "
                                     "replaying them",
                                     recorded));
  } else {
    write_file_atomically(job, identity.dump(2) + "\n");
  }
}

ResumeJournal::~ResumeJournal() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void ResumeJournal::record(const DecoderBlock& block,
                           const std::map<std::string, LinearState>& states,
                           const std::vector<LayerReport>& layers, const BlockTimings& timings) {
  if (block.index != recorded_)
    fail_internal("resume journal: block {} recorded after {} blocks", block.index, recorded_);
  json quantized = json::object();  // per linear: its scheme, and whether the codes give W
  json layers_json = json::array();
  for (const auto& layer : layers) layers_json.push_back(layer_report_json(layer));
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& linear : block.linears) {
    auto state = states.find(linear.name);
    bool weight_from_codes = false;
    if (state != states.end() && state->second.quant) {
      const QuantizedWeight& quant = *state->second.quant;
      quantized[linear.name] = scheme_json(quant.scheme);
      tensors.emplace_back(linear.name + ".q", quant.q);
      tensors.emplace_back(linear.name + ".scale", quant.scale);
      tensors.emplace_back(linear.name + ".zero_point", quant.zero_point);
      if (quant.g_idx) tensors.emplace_back(linear.name + ".g_idx", *quant.g_idx);
      // A host copy leaves the weight behind when the codes give it (overlap.h).
      weight_from_codes = !linear.weight.defined() ||
                          linear.weight.equal(dequantize(quant).to(linear.weight.device()));
    }
    quantized[linear.name]["weight_from_codes"] = weight_from_codes;
    if (!weight_from_codes) tensors.emplace_back(linear.name + ".weight", linear.weight);
    if (linear.bias) tensors.emplace_back(linear.name + ".bias", *linear.bias);
    if (linear.lowrank) {
      tensors.emplace_back(linear.name + ".lowrank_a", linear.lowrank->a);
      tensors.emplace_back(linear.name + ".lowrank_b", linear.lowrank->b);
    }
  }
  for (const auto& norm : block.norms) {
    if (norm.weight.defined()) tensors.emplace_back(norm.name + ".weight", norm.weight);
    if (norm.bias) tensors.emplace_back(norm.name + ".bias", *norm.bias);
  }
  const json metadata = {{"index", block.index},
                         {"layers", layers_json},
                         {"timings", block_timings_json(timings)},
                         {"quantized", quantized}};
  SafetensorsWriter writer(record_path(dir_, block.index), {{kMetadataKey, metadata.dump()}});
  for (const auto& [name, tensor] : tensors) writer.add(name, cpu(tensor));
  writer.finish();
  ++recorded_;
}

RecordedBlock ResumeJournal::restore(DecoderBlock& block) const {
  const std::string path = record_path(dir_, block.index);
  const SafetensorsFile file(path);
  auto damaged = [&path](const std::string& what) -> UserError {
    return UserError(fmt::format(
        "{}: the resume record is damaged ({}); run with --overwrite instead of --resume to "
        "start over",
        path, what));
  };
  auto it = file.metadata().find(kMetadataKey);
  if (it == file.metadata().end()) throw damaged("no presso_block metadata");
  json metadata;
  RecordedBlock recorded;
  try {
    metadata = parse_json_input<json>(it->second, path);
    if (metadata.at("index").get<int>() != block.index) throw damaged("another block's record");
    for (const auto& layer : metadata.at("layers")) {
      recorded.layers.push_back(layer_report_from_json(layer));
    }
    recorded.timings = block_timings_from_json(metadata.at("timings"));
  } catch (const json::exception& error) {
    throw damaged(error.what());
  }
  const torch::Device device =
      block.linears.empty() ? torch::Device(torch::kCPU) : block.linears.front().weight.device();
  auto load = [&](const std::string& name) {
    if (!file.contains(name)) throw damaged("no tensor '" + name + "'");
    return file.load(name).to(device);
  };
  const json& quantized = metadata.at("quantized");
  for (auto& linear : block.linears) {
    if (!quantized.contains(linear.name)) throw damaged("no entry for '" + linear.name + "'");
    const json& entry = quantized.at(linear.name);
    if (entry.contains("bits")) {
      QuantizedWeight quant;
      quant.scheme = {entry.at("bits").get<int>(), entry.at("group_size").get<int>(),
                      entry.at("symmetric").get<bool>()};
      quant.q = load(linear.name + ".q");
      quant.scale = load(linear.name + ".scale");
      quant.zero_point = load(linear.name + ".zero_point");
      if (file.contains(linear.name + ".g_idx")) quant.g_idx = load(linear.name + ".g_idx");
      LinearState state;
      state.linear = &linear;
      state.quant = std::move(quant);
      recorded.states[linear.name] = std::move(state);
    }
    linear.weight = entry.at("weight_from_codes").get<bool>()
                        ? dequantize(*recorded.states.at(linear.name).quant)
                        : load(linear.name + ".weight");
    if (linear.bias) linear.bias = load(linear.name + ".bias");
    if (file.contains(linear.name + ".lowrank_a")) {
      linear.lowrank =
          LowRankPair{load(linear.name + ".lowrank_a"), load(linear.name + ".lowrank_b")};
    }
  }
  for (auto& norm : block.norms) {
    if (norm.weight.defined()) norm.weight = load(norm.name + ".weight");
    if (norm.bias) norm.bias = load(norm.name + ".bias");
  }
  return recorded;
}

void ResumeJournal::remove() {
  remove_tree(dir_);
  recorded_ = 0;
}

}  // namespace presso

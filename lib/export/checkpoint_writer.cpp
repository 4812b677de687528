// CheckpointWriter: the output directory, built beside its destination and renamed into place.
#include "lib/export/checkpoint_writer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/json_input.h"
#include "lib/common/output_paths.h"
#include "lib/common/text.h"
#include "lib/export/lora_adapter.h"
#include "lib/export/quantization_config.h"
#include "lib/io/safetensors.h"
#include "lib/model/model.h"
#include "lib/quant/tensor_checks.h"
#include "lib/sparse/pack_24_bitmask.h"

namespace presso {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Whether a file of the source directory is carried over as it is. Not: what the writer writes
// itself (config.json, model.safetensors, presso_report.json), the source's weights in any
// format and their indexes (they would sit stale beside the new ones), foreign quantization
// configs, the fixtures' reference_* files, and hidden files. Everything else — tokenizer.json,
// tokenizer_config.json, special_tokens_map.json, generation_config.json, vocab and merges
// files, chat templates — is copied.
bool carried_over(const std::string& name) {
  static const char* const kWritten[] = {"config.json", "presso_report.json",
                                         "quantize_config.json", "quant_config.json"};
  static const char* const kWeightSuffixes[] = {
      ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx", ".tmp"};
  if (name.empty() || name[0] == '.') return false;
  if (name.rfind("reference_", 0) == 0) return false;
  if (name.find(".index.json") != std::string::npos) return false;
  for (const char* written : kWritten)
    if (name == written) return false;
  for (const char* suffix : kWeightSuffixes)
    if (ends_with(name, suffix)) return false;
  return true;
}

// An existing `out` (shown as `shown`) may be replaced only when it is an empty directory or, with
// overwrite, an earlier presso output: --overwrite must never delete a directory of the user's
// that a typo named.
void check_replaceable(const fs::path& out, bool overwrite, const std::string& shown) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  if (!fs::is_directory(out, ec)) fail_user("{}: exists and is not a directory", shown);
  if (fs::is_empty(out, ec)) return;
  if (!overwrite) fail_user("{}: exists; pass --overwrite to replace it", shown);
  if (!fs::is_regular_file(out / "presso_report.json", ec)) {
    fail_user(
        "{}: exists and is not an earlier presso output (it has no presso_report.json); "
        "--overwrite replaces only an empty directory or a presso output: remove it yourself "
        "or name another output",
        shown);
  }
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail_user("{}: cannot create: {}", path.string(), std::strerror(errno));
  out << text;
  out.flush();
  if (!out) fail_user("{}: write failed", path.string());
}

// Sets `key` of `config` to `value`: in place when present, else where a sorted file
// (transformers writes config.json with sort_keys=True) has it.
void set_sorted(nlohmann::ordered_json& config, const std::string& key,
                const nlohmann::ordered_json& value) {
  if (config.contains(key)) {
    config[key] = value;
    return;
  }
  nlohmann::ordered_json result = nlohmann::ordered_json::object();
  bool placed = false;
  for (auto it = config.begin(); it != config.end(); ++it) {
    if (!placed && it.key() > key) {
      result[key] = value;
      placed = true;
    }
    result[it.key()] = it.value();
  }
  if (!placed) result[key] = value;
  config = std::move(result);
}

const char* config_dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat32:
      return "float32";
    default:
      fail_internal("no config.json name for dtype {}", c10::toString(dtype));
  }
}

// The source's config.json with quantization_config replaced (or removed when `quantization`
// is none) and, with `dtype`, the model's dtype set: transformers 5 writes `dtype`, older
// releases `torch_dtype`; whichever the source has is replaced, `torch_dtype` (read by both) is
// added when it has neither. Key order is kept.
std::string output_config(const std::string& source_config,
                          const std::optional<nlohmann::json>& quantization,
                          std::optional<torch::ScalarType> dtype) {
  auto config = parse_json_input<nlohmann::ordered_json>(read_file_bytes(source_config),
                                                         source_config);
  if (!config.is_object()) fail_user("{}: the top level is not a JSON object", source_config);
  config.erase("quantization_config");
  if (quantization) {
    set_sorted(config, "quantization_config", nlohmann::ordered_json::parse(quantization->dump()));
  }
  if (dtype) {
    const char* name = config_dtype_name(*dtype);
    bool set = false;
    for (const char* key : {"dtype", "torch_dtype"}) {
      if (!config.contains(key)) continue;
      config[key] = name;
      set = true;
    }
    if (!set) set_sorted(config, "torch_dtype", name);
  }
  return config.dump(2) + "\n";
}

}  // namespace

struct CheckpointWriter::Impl {
  OutputFormat format = OutputFormat::kCompressedTensors;
  std::optional<torch::ScalarType> model_dtype;  // the format's; nullopt: as stored
  const Model* model = nullptr;
  fs::path source;
  fs::path out;
  fs::path temp;
  bool overwrite = false;
  std::vector<fs::path> created_parents;  // by the constructor, deepest first
  std::vector<std::string> removed_stale;
  std::unique_ptr<SafetensorsWriter> tensors;
  std::set<std::string> linears;  // every linear of the model
  std::vector<LinearPlan> plan;   // what the job changes, from set_plan
  std::vector<LinearPlan> quantized;
  LoraAdapter adapter;
  bool merge_lowrank = false;
  // Exact zeros and elements of every parameter written (compressed-tensors' global_sparsity).
  double zeros = 0.0;
  double elements = 0.0;
  bool assembled = false;  // the temporary directory is complete
  bool finished = false;   // and renamed into place

  void count(const torch::Tensor& values) {
    zeros += static_cast<double>((values == 0).sum().item<int64_t>());
    elements += static_cast<double>(values.numel());
  }
  const LinearPlan* planned(const std::string& name) const {
    for (const auto& linear : plan)
      if (linear.name == name) return &linear;
    return nullptr;
  }

  // `tensor` (floating point) in the format's model dtype. UserError naming the tensor when a
  // value overflows it (bf16 and fp32 reach past fp16's 65504).
  torch::Tensor in_model_dtype(const std::string& name, const torch::Tensor& tensor) const {
    if (!model_dtype || !tensor.is_floating_point() || tensor.scalar_type() == *model_dtype) {
      return tensor;
    }
    torch::Tensor converted = tensor.to(*model_dtype);
    const torch::Tensor finite = torch::isfinite(tensor);
    if (!torch::isfinite(converted).eq(finite).all().item<bool>()) {
      fail_user(
          "tensor '{}': values up to {} overflow {}, which a {} checkpoint is written in (the "
          "dtype its serving kernels run); use --format compressed-tensors, which keeps the "
          "checkpoint's dtype",
          name, tensor.abs().max().item<double>(), config_dtype_name(*model_dtype),
          output_format_name(format));
    }
    return converted;
  }

  void check_open(const char* what) const {
    if (assembled || finished)
      fail_internal("CheckpointWriter::{} after finish() ({})", what, out.string());
  }
  void copy_source_files() const;
  void install();
};

void CheckpointWriter::Impl::copy_source_files() const {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(source, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || !carried_over(name)) continue;
    fs::copy_file(entry.path(), temp / name, fs::copy_options::overwrite_existing, ec);
    if (ec)
      fail_user("{}: cannot copy to {}: {}", entry.path().string(), temp.string(), ec.message());
  }
  if (ec) fail_user("{}: cannot list the directory: {}", source.string(), ec.message());
}

// Renames the finished temporary directory onto `out`; an old `out` (only with overwrite) is
// first renamed aside and deleted once the new one is in place, or restored if that fails.
void CheckpointWriter::Impl::install() {
  std::error_code ec;
  fs::path trash;
  check_replaceable(out, overwrite, out.string());  // again: the run may have taken hours
  if (fs::exists(out)) {
    if (fs::is_empty(out)) {
      fs::remove(out, ec);
    } else {
      trash = out.parent_path() /
              (out.filename().string() + ".presso-old-" + std::to_string(::getpid()));
      remove_tree(trash.string());
      fs::rename(out, trash, ec);
      if (ec) fail_user("{}: cannot move the old directory aside: {}", out.string(), ec.message());
    }
  }
  fs::rename(temp, out, ec);
  if (ec) {
    std::error_code restore;
    if (!trash.empty()) fs::rename(trash, out, restore);
    fail_user("{}: cannot rename {} into place: {}", out.string(), temp.string(), ec.message());
  }
  if (!trash.empty()) remove_tree(trash.string());
  finished = true;
}

CheckpointWriter::CheckpointWriter(OutputFormat format, const std::string& out_dir,
                                   const Model& source, bool overwrite)
    : impl_(std::make_unique<Impl>()) {
  Impl& w = *impl_;
  if (out_dir.empty()) fail_user("the output directory is empty; name one");
  w.format = format;
  w.model_dtype = format_spec(format).model_dtype;
  w.model = &source;
  w.overwrite = overwrite;
  w.source = normalized_path(source.dir());
  w.out = normalized_path(out_dir);
  if (same_or_below(w.out, w.source)) {
    if (same_or_below(w.source, w.out))
      fail_user("{}: is the source checkpoint's directory; write the output elsewhere", out_dir);
    fail_user("{}: lies inside the source checkpoint {}; write the output elsewhere", out_dir,
              source.dir());
  }
  if (overwrite && fs::exists(w.out) && same_or_below(w.source, w.out)) {
    fail_user("{}: holds the source checkpoint {}; --overwrite would delete it", out_dir,
              source.dir());
  }
  check_replaceable(w.out, overwrite, out_dir);
  std::error_code ec;
  for (fs::path p = w.out.parent_path(); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    w.created_parents.push_back(p);
    if (p == p.parent_path()) break;
  }
  fs::create_directories(w.out.parent_path(), ec);
  if (ec) fail_user("{}: cannot create the parent directory: {}", out_dir, ec.message());
  w.removed_stale = remove_stale_temporaries(w.out);
  w.temp = temporary_directory_for(w.out);
  remove_tree(w.temp.string());  // a leftover of a crashed run with the same process id
  if (!fs::create_directory(w.temp, ec) || ec) {
    fail_user("{}: cannot create the temporary directory {}: {}", out_dir, w.temp.string(),
              ec ? ec.message() : "it exists");
  }
  try {
    for (const auto& linear : source.linears()) w.linears.insert(linear.name);
    w.tensors =
        std::make_unique<SafetensorsWriter>((w.temp / "model.safetensors").string(),
                                            std::map<std::string, std::string>{{"format", "pt"}});
  } catch (...) {
    remove_tree(w.temp.string());
    throw;
  }
}

CheckpointWriter::~CheckpointWriter() {
  if (!impl_ || impl_->finished) return;
  impl_->tensors.reset();  // removes its own temporaries
  remove_tree(impl_->temp.string());
  std::error_code ec;
  for (const auto& parent : impl_->created_parents) fs::remove(parent, ec);  // if still empty
}

const std::vector<std::string>& CheckpointWriter::removed_stale_temporaries() const {
  return impl_->removed_stale;
}

OutputFormat CheckpointWriter::format() const { return impl_->format; }

void CheckpointWriter::set_plan(const std::vector<LinearPlan>& plan) { impl_->plan = plan; }

void CheckpointWriter::merge_lowrank() {
  if (impl_->format != OutputFormat::kDense) {
    fail_internal("merge_lowrank: the {} format stores its codes, not a merged weight",
                  output_format_name(impl_->format));
  }
  impl_->merge_lowrank = true;
}

void CheckpointWriter::add_tensor(const std::string& name, const torch::Tensor& tensor) {
  impl_->check_open("add_tensor");
  const torch::Tensor stored = impl_->in_model_dtype(name, tensor);
  if (stored.is_floating_point()) impl_->count(stored);
  impl_->tensors->add(name, stored);
}

void CheckpointWriter::add_dense_linear(const Linear& linear, torch::ScalarType dtype) {
  Impl& w = *impl_;
  w.check_open("add_dense_linear");
  // W: [out, in]; GPT-2's Conv1D keeps [in, out] on disk.
  const torch::Tensor full = w.merge_lowrank ? effective_weight(linear) : linear.weight;
  torch::Tensor weight = w.in_model_dtype(linear.name + ".weight", full.to(torch::kCPU))
                             .to(w.model_dtype.value_or(dtype))
                             .contiguous();
  w.count(weight);
  const LinearPlan* plan = w.planned(linear.name);
  if (plan && plan->sparsity && format_spec(w.format).sparse_24_compressed &&
      sparse_24_storage(*w.model, w.plan)) {
    Sparse24Packed packed = pack_sparse24_bitmask(weight, weight != 0, linear.name);
    w.tensors->add(linear.name + ".compressed", packed.compressed);
    w.tensors->add(linear.name + ".bitmask", packed.bitmask);
    w.tensors->add(linear.name + ".shape", packed.shape);
    return;
  }
  if (linear.stored_transposed) weight = weight.t().contiguous();
  w.tensors->add(linear.name + ".weight", weight);
}

void CheckpointWriter::add_lowrank(const Linear& linear) {
  impl_->check_open("add_lowrank");
  if (!linear.lowrank) fail_internal("add_lowrank: '{}' has no low-rank path", linear.name);
  if (impl_->merge_lowrank) return;  // already in the weight
  impl_->adapter.add(linear.name, *linear.lowrank);
}

void CheckpointWriter::add_quantized(const Linear& linear, const QuantizedWeight& quantized,
                                     torch::ScalarType dtype) {
  Impl& w = *impl_;
  // Packed where the codes lie (on a GPU in a few milliseconds, where the CPU takes a second for
  // a 7B block); the file writer copies the packed tensors to the host.
  const QuantizedWeight& weight = quantized;
  w.check_open("add_quantized");
  if (!w.linears.count(linear.name)) {
    fail_internal("add_quantized: '{}' is not a linear of the {} model", linear.name,
                  w.model->config().model_type);
  }
  check_quantized_weight(weight, linear.name);
  if (linear.weight.defined() && linear.weight.sizes() != weight.q.sizes()) {
    fail_internal("add_quantized: '{}' has weight {} but codes {}", linear.name,
                  shape_string(linear.weight), shape_string(weight.q));
  }
  if (w.merge_lowrank && linear.lowrank) {
    // W (the dequantized codes, which the block holds) + B·A, as a dense weight.
    torch::Tensor merged = effective_weight(linear).to(torch::kCPU, dtype).contiguous();
    w.count(merged);
    if (linear.stored_transposed) merged = merged.t().contiguous();
    w.tensors->add(linear.name + ".weight", merged);
  } else {
    format_spec(w.format).write_quantized(*w.tensors, linear, weight, dtype);
    w.count(dequantize(weight));
  }
  LinearPlan stored;
  if (const LinearPlan* plan = w.planned(linear.name)) stored = *plan;
  stored.name = linear.name;
  stored.out_features = weight.q.size(0);
  stored.in_features = weight.q.size(1);
  stored.scheme = weight.scheme;
  stored.g_idx = weight.g_idx.has_value();
  w.quantized.push_back(stored);
}

void CheckpointWriter::finish(const nlohmann::json& report) {
  assemble(report);
  install();
}

void CheckpointWriter::install() {
  if (!impl_->assembled || impl_->finished)
    fail_internal("CheckpointWriter::install without assemble() ({})", impl_->out.string());
  impl_->install();
}

void CheckpointWriter::assemble(const nlohmann::json& report) {
  Impl& w = *impl_;
  w.check_open("assemble");
  if (w.assembled) fail_internal("CheckpointWriter::assemble twice ({})", w.out.string());
  // First what can be refused, so that nothing is assembled for a checkpoint that cannot load.
  std::vector<LinearPlan> stored = w.quantized;  // what was written, with the plan's others
  for (const auto& linear : w.plan) {
    if (!linear.scheme) stored.push_back(linear);
  }
  const auto problems = checkpoint_problems(w.format, *w.model, stored);
  if (!problems.empty()) {
    throw UserError(fmt::format("cannot write a {} checkpoint:\n  - {}",
                                output_format_name(w.format), fmt::join(problems, "\n  - ")));
  }
  const double sparsity = w.elements > 0 ? w.zeros / w.elements : 0.0;
  const auto quantization = format_spec(w.format).quantization_config({*w.model, stored, sparsity});
  const std::string config =
      output_config((w.source / "config.json").string(), quantization, w.model_dtype);
  w.tensors->finish();
  write_text(w.temp / "config.json", config);
  if (!w.adapter.empty()) w.adapter.write((w.temp / "adapter").string(), w.source.string());
  w.copy_source_files();
  write_text(w.temp / "presso_report.json", report.dump(2) + "\n");
  w.assembled = true;
}

}  // namespace presso

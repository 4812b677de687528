// lib/io: tensor file formats (safetensors; later GGUF). Knows nothing of models or passes.
// May include lib/common, LibTorch, nlohmann-json, fmt.
//
// Reading memory-maps the file once and hands out tensors lazily, one at a time, so opening a
// multi-gigabyte checkpoint costs no memory until a tensor is asked for. Every offset, size and
// shape in the header is validated when the file is opened: a corrupt or hostile file gives a
// UserError naming the file and tensor, never a read out of bounds.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace presso {

// The dtypes of the safetensors header ("F32", "BF16", ...).
enum class StDtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* st_dtype_name(StDtype dtype);             // "BF16"
size_t st_dtype_size(StDtype dtype);                  // bytes per element
torch::ScalarType st_dtype_to_torch(StDtype dtype);   // kBFloat16
StDtype st_dtype_from_torch(torch::ScalarType type);  // throws UserError if unsupported
std::optional<StDtype> st_dtype_from_name(const std::string& name);  // "BF16" -> BF16
std::string st_dtype_names();  // "F64, F32, ..." for error messages

struct TensorInfo {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
  uint64_t nbytes() const { return end - begin; }
};

// A header is validated as the reference Rust implementation (huggingface/safetensors) does, so
// that what presso accepts every other reader accepts too: header at most 100,000,000 bytes, a JSON
// object whose entries have exactly dtype, shape and data_offsets, each tensor's byte size equal to
// product(shape) * dtype size, and the tensors, sorted by offset, tiling the data section exactly
// (no overlap, no hole, no trailing bytes). All problems of a header are reported in one UserError,
// one line each, "<path>: tensor '<name>': <problem>". Assumes a little-endian host, as the format.
struct SafetensorsHeader {
  uint64_t data_offset = 0;         // 8 + header length
  std::vector<TensorInfo> tensors;  // header order
  std::map<std::string, std::string> metadata;
};

// The validated header of a whole safetensors file held in memory (the 8-byte length, the JSON
// and the data section); `source` names it in messages. SafetensorsFile reads its mapping through
// it; the fuzz harness (fuzz/) feeds it bytes without writing files.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size,
                                           const std::string& source);

// One .safetensors file, memory-mapped read-only, its header read by parse_safetensors_header.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // validates the whole header
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // in header order
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // throws UserError naming the file
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // An owned tensor (copied out of the mapping) in the stored dtype, or converted to `as`.
  torch::Tensor load(const std::string& name,
                     std::optional<torch::ScalarType> as = std::nullopt) const;

 private:
  void release_pages(const uint8_t* begin, size_t size) const;

  std::string path_;
  const uint8_t* map_ = nullptr;  // the whole file; the descriptor is closed once mapped
  size_t map_size_ = 0;
  int guard_slot_ = -1;     // lib/io/mapping_guard.h: a SIGBUS in the mapping names the file
  size_t data_offset_ = 0;  // 8 + header length
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// The weight_map of a `model.safetensors.index.json` given as text: tensor name -> shard file.
// UserError naming `source` unless it is a non-empty object of plain relative file names.
std::map<std::string, std::string> parse_shard_index(std::string_view text,
                                                     const std::string& source);

// A checkpoint directory's tensors: `model.safetensors`, or the shards listed by
// `model.safetensors.index.json` (its weight_map); the single file wins when both exist, as in
// transformers. Every shard is mapped and its header validated at open (mapping costs no memory;
// tensor data is still read lazily), and every weight_map entry must name a tensor of its shard.
// Tensors a shard holds but the weight_map does not list are ignored, as transformers does.
class TensorStore {
 public:
  static TensorStore open_dir(const std::string& model_dir);  // UserError if neither exists
  std::vector<std::string> names() const;                     // sorted
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  // The tensor converted to `as` (default fp32, the compute dtype); nullopt keeps the stored dtype.
  torch::Tensor load(const std::string& name,
                     std::optional<torch::ScalarType> as = torch::kFloat32) const;
  // Total bytes of tensor data, and the paths of the files opened (for `presso inspect`).
  uint64_t total_bytes() const;
  std::vector<std::string> files() const;
  const std::string& dir() const { return dir_; }

 private:
  [[noreturn]] void fail_unknown(const std::string& name) const;

  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index into files_
};

// Streams tensors into `path`: data goes to temporary files (`path`.data<N>.tmp, one per element
// size N) as tensors arrive, so peak memory is one tensor, and finish() writes header + data to
// `path`.tmp, then renames it into place. If the writer is destroyed without finish(), nothing is
// written at `path` (a file already there is left as it was) and the temporaries go. The header is
// padded with spaces to a multiple of 8 bytes, as the Rust library does, and the data section
// holds the 8-byte dtypes first, then 4-, 2- and 1-byte ones, each group in the order added, so
// every tensor is aligned to its element size in the file.
class SafetensorsWriter {
 public:
  explicit SafetensorsWriter(std::string path, std::map<std::string, std::string> metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Stored in the tensor's dtype; CUDA or non-contiguous tensors are copied to contiguous CPU
  // memory first. UserError for a duplicate or reserved name or an unsupported dtype;
  // InternalError after finish().
  void add(const std::string& name, const torch::Tensor& tensor);
  void finish();  // UserError naming the file if writing fails; the temporaries are removed

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace presso

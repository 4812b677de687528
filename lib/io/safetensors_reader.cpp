// SafetensorsFile: maps one .safetensors file and validates its whole header before any tensor is
// handed out (the rules are listed above the class in safetensors.h).
#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/common/text.h"
#include "lib/io/mapping_guard.h"
#include "lib/io/safetensors.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and is copied without byte swapping");

namespace presso {
namespace {

// Ordered, so that names() can give the header order.
using Json = nlohmann::ordered_json;

constexpr uint64_t kHeaderLengthBytes = 8;
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the Rust library's MAX_HEADER_SIZE
// A valid header nests root object (depth 0) > entry (1) > shape or offsets list (2) > numbers (3).
// Refusing anything deeper while parsing keeps a hostile "[[[[..." from exhausting the stack.
constexpr int kMaxHeaderDepth = 3;
constexpr size_t kMaxProblemsReported = 20;
const char* const kMetadataKey = "__metadata__";

void check_fits_header_length(size_t file_size, const std::string& path) {
  if (file_size < kHeaderLengthBytes)
    fail_user("{}: file is {} bytes, too short for the 8-byte header length of a safetensors file",
              path, file_size);
}

uint64_t read_u64_le(const uint8_t* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// A JSON value for an error message, cut short so that a hostile header cannot flood the terminal.
std::string excerpt(const Json& value) { return abbreviate(value.dump(), 60); }

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Parses the header, refusing duplicate keys (nlohmann would silently keep the last one, hiding
// an ambiguous file) and nesting deeper than a valid header has.
Json parse_header_json(const std::string& path, const char* begin, const char* end) {
  std::set<std::string> top_level_keys;
  std::set<std::string> entry_keys;
  std::string current_entry;
  auto check_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth > kMaxHeaderDepth) {
      std::string where = current_entry.empty() ? "" : fmt::format("tensor '{}': ", current_entry);
      fail_user("{}: {}header nests deeper than a safetensors header can ({} levels)", path, where,
                kMaxHeaderDepth);
    }
    if (event != Json::parse_event_t::key) return true;
    const auto& key = parsed.get_ref<const std::string&>();
    if (depth == 1) {
      current_entry = key;
      entry_keys.clear();
      if (!top_level_keys.insert(key).second)
        fail_user("{}: tensor '{}' appears twice in the header", path, key);
    } else if (depth == 2 && !entry_keys.insert(key).second) {
      fail_user("{}: tensor '{}': key '{}' appears twice", path, current_entry, key);
    }
    return true;
  };
  try {
    return Json::parse(begin, end, check_event);
  } catch (const Json::exception& error) {  // parse_error, or out_of_range for 1e400
    fail_user("{}: header is not valid JSON: {}", path, error.what());
  }
}

// The list of non-negative integers at `value`, or nullopt.
std::optional<std::vector<uint64_t>> unsigned_list(const Json& value) {
  if (!value.is_array()) return std::nullopt;
  std::vector<uint64_t> numbers;
  for (const Json& element : value) {
    if (!element.is_number_unsigned()) return std::nullopt;
    numbers.push_back(element.get<uint64_t>());
  }
  return numbers;
}

// product(max(dim, 1)) fits in int64, so LibTorch's numel and stride arithmetic cannot overflow,
// even for a zero-size tensor with huge other dims.
bool shape_fits_int64(const std::vector<int64_t>& shape) {
  int64_t product = 1;
  for (int64_t dim : shape) {
    int64_t factor = std::max<int64_t>(dim, 1);
    if (product > std::numeric_limits<int64_t>::max() / factor) return false;
    product *= factor;
  }
  return true;
}

// Validates one tensor entry; appends a problem and returns nullopt if it is malformed.
std::optional<TensorInfo> parse_entry(const std::string& name, const Json& entry,
                                      uint64_t data_size, std::vector<std::string>& problems) {
  auto problem = [&](const std::string& text) {
    problems.push_back(fmt::format("tensor '{}': {}", name, text));
    return std::nullopt;
  };
  if (!entry.is_object())
    return problem(fmt::format("entry is a JSON {}, not an object with dtype, shape, data_offsets",
                               entry.type_name()));
  for (const auto& item : entry.items())
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      return problem(
          fmt::format("unknown key '{}' (expected dtype, shape, data_offsets)", item.key()));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(key)) return problem(fmt::format("missing key '{}'", key));

  TensorInfo info;
  info.name = name;
  const Json& dtype = entry["dtype"];
  std::optional<StDtype> known =
      dtype.is_string() ? st_dtype_from_name(dtype.get<std::string>()) : std::nullopt;
  if (!known)
    return problem(
        fmt::format("unknown dtype {} (supported: {})", excerpt(dtype), st_dtype_names()));
  info.dtype = *known;

  std::optional<std::vector<uint64_t>> shape = unsigned_list(entry["shape"]);
  if (!shape)
    return problem(
        fmt::format("shape {} is not a list of non-negative integers", excerpt(entry["shape"])));
  for (uint64_t dim : *shape) {
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return problem(fmt::format("shape {} has a dimension above 2^63", excerpt(entry["shape"])));
    info.shape.push_back(static_cast<int64_t>(dim));
  }

  std::optional<std::vector<uint64_t>> offsets = unsigned_list(entry["data_offsets"]);
  if (!offsets || offsets->size() != 2)
    return problem(fmt::format("data_offsets {} is not a list of two non-negative integers",
                               excerpt(entry["data_offsets"])));
  info.begin = (*offsets)[0];
  info.end = (*offsets)[1];
  if (info.begin > info.end)
    return problem(fmt::format("data offsets [{}, {}) are reversed", info.begin, info.end));
  if (info.end > data_size)
    return problem(
        fmt::format("data offsets [{}, {}) run past the end of the data section "
                    "({} bytes; the file is truncated or the header is wrong)",
                    info.begin, info.end, data_size));
  if (!shape_fits_int64(info.shape))
    return problem(fmt::format("shape {} is too large: its dimensions multiply past 2^63",
                               shape_text(info.shape)));
  uint64_t element_count = 1;  // fits: bounded by the product checked just above
  for (int64_t dim : info.shape) element_count *= static_cast<uint64_t>(dim);
  size_t element_size = st_dtype_size(info.dtype);
  if (element_count > std::numeric_limits<uint64_t>::max() / element_size)
    return problem(fmt::format("shape {} of {} needs more than 2^64 bytes", shape_text(info.shape),
                               st_dtype_name(info.dtype)));
  uint64_t expected_bytes = element_count * element_size;
  if (expected_bytes != info.nbytes())
    return problem(fmt::format("shape {} of {} needs {} bytes but data offsets [{}, {}) hold {}",
                               shape_text(info.shape), st_dtype_name(info.dtype), expected_bytes,
                               info.begin, info.end, info.nbytes()));
  return info;
}

// The Rust library requires the tensors, in offset order, to cover the data section exactly.
void check_tiling(std::vector<const TensorInfo*> by_offset, uint64_t data_size,
                  std::vector<std::string>& problems) {
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* tensor : by_offset) {
    if (tensor->begin < covered) {
      problems.push_back(fmt::format(
          "tensor '{}': data offsets [{}, {}) overlap tensor '{}' [{}, {})", tensor->name,
          tensor->begin, tensor->end, previous->name, previous->begin, previous->end));
    } else if (tensor->begin > covered) {
      problems.push_back(fmt::format(
          "tensor '{}': data offsets [{}, {}) leave bytes [{}, {}) unused (safetensors requires "
          "the tensors to be contiguous)",
          tensor->name, tensor->begin, tensor->end, covered, tensor->begin));
    }
    if (tensor->end > covered) {
      covered = tensor->end;
      previous = tensor;
    }
  }
  if (covered < data_size)
    problems.push_back(
        fmt::format("data section has {} bytes after the last tensor (safetensors "
                    "requires the tensors to cover it exactly)",
                    data_size - covered));
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t file_size,
                                           const std::string& path) {
  check_fits_header_length(file_size, path);
  uint64_t header_length = read_u64_le(bytes);
  if (header_length > kMaxHeaderBytes)
    fail_user("{}: header length {} exceeds the limit of {} bytes (not a safetensors file?)", path,
              header_length, kMaxHeaderBytes);
  if (header_length > file_size - kHeaderLengthBytes)
    fail_user("{}: header length {} runs past the end of the file ({} bytes; truncated?)", path,
              header_length, file_size);
  const char* header_begin = reinterpret_cast<const char*>(bytes + kHeaderLengthBytes);
  Json header = parse_header_json(path, header_begin, header_begin + header_length);
  if (!header.is_object())
    fail_user("{}: header is a JSON {}, not an object of tensors", path, header.type_name());

  SafetensorsHeader parsed;
  parsed.data_offset = kHeaderLengthBytes + header_length;
  uint64_t data_size = file_size - parsed.data_offset;
  std::vector<std::string> problems;
  for (const auto& item : header.items()) {
    if (item.key() == kMetadataKey) {
      if (!item.value().is_object()) {
        problems.push_back(fmt::format("'{}' is a JSON {}, not an object of strings", kMetadataKey,
                                       item.value().type_name()));
        continue;
      }
      for (const auto& entry : item.value().items()) {
        if (entry.value().is_string())
          parsed.metadata[entry.key()] = entry.value().get<std::string>();
        else
          problems.push_back(fmt::format("metadata key '{}': value {} is not a string", entry.key(),
                                         excerpt(entry.value())));
      }
      continue;
    }
    if (auto info = parse_entry(item.key(), item.value(), data_size, problems))
      parsed.tensors.push_back(std::move(*info));
  }
  // Gaps and overlaps are only meaningful once every entry's own offsets are sound.
  if (problems.empty()) {
    std::vector<const TensorInfo*> by_offset;
    for (const TensorInfo& tensor : parsed.tensors) by_offset.push_back(&tensor);
    check_tiling(std::move(by_offset), data_size, problems);
  }
  if (!problems.empty()) {
    std::string message;
    for (size_t i = 0; i < std::min(problems.size(), kMaxProblemsReported); ++i)
      message += fmt::format("{}{}: {}", i ? "\n" : "", path, problems[i]);
    if (problems.size() > kMaxProblemsReported)
      message += fmt::format("\n{}: ... and {} more problems", path,
                             problems.size() - kMaxProblemsReported);
    throw UserError(message);
  }
  return parsed;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  require_regular_file(path);  // before open(): opening a FIFO blocks
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_user("{}: cannot open: {}", path, std::strerror(errno));
  struct stat file_stat {};
  if (::fstat(fd, &file_stat) != 0 || !S_ISREG(file_stat.st_mode)) {
    ::close(fd);
    fail_user("{}: not a regular file", path);
  }
  map_size_ = static_cast<size_t>(file_stat.st_size);
  if (map_size_ < kHeaderLengthBytes) {  // also keeps mmap from being asked for 0 bytes
    ::close(fd);
    check_fits_header_length(map_size_, path);
  }
  void* map = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);  // the mapping keeps the file open
  if (map == MAP_FAILED) fail_user("{}: cannot memory-map: {}", path, std::strerror(map_errno));
  map_ = static_cast<const uint8_t*>(map);
  guard_slot_ = guard_mapping(map_, map_size_, path);
  try {
    SafetensorsHeader header = parse_safetensors_header(map_, map_size_, path);
    data_offset_ = header.data_offset;
    tensors_ = std::move(header.tensors);
    metadata_ = std::move(header.metadata);
  } catch (...) {
    unguard_mapping(guard_slot_);
    ::munmap(const_cast<uint8_t*>(map_), map_size_);
    throw;
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() {
  unguard_mapping(guard_slot_);
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const TensorInfo& tensor : tensors_) names.push_back(tensor.name);
  return names;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) > 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto found = index_.find(name);
  if (found == index_.end())
    fail_user("{}: no tensor '{}' (the file holds {} tensors)", path_, name, tensors_.size());
  return tensors_[found->second];
}

// Unmaps the pages of bytes just copied out of the file: they stay in the page cache, but no longer
// count towards the process's resident memory, so streaming a checkpoint many times the size of
// RAM through load() keeps RSS at about one tensor. Pages touched again are mapped back on demand.
void SafetensorsFile::release_pages(const uint8_t* begin, size_t size) const {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(begin) + size) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

torch::Tensor SafetensorsFile::load(const std::string& name,
                                    std::optional<torch::ScalarType> as) const {
  const TensorInfo& tensor = info(name);
  // BOOL is read as bytes: a stored byte other than 0 or 1 would be an invalid torch bool.
  bool is_bool = tensor.dtype == StDtype::BOOL;
  torch::ScalarType stored = is_bool ? torch::kUInt8 : st_dtype_to_torch(tensor.dtype);
  // A fresh, aligned tensor: the mapped bytes may sit at any alignment, so they are copied rather
  // than wrapped with from_blob.
  torch::Tensor loaded = torch::empty(tensor.shape, torch::TensorOptions().dtype(stored));
  if (tensor.nbytes() > 0) {
    const uint8_t* begin = map_ + data_offset_ + tensor.begin;
    std::memcpy(loaded.data_ptr(), begin, tensor.nbytes());
    release_pages(begin, tensor.nbytes());
  }
  if (is_bool) loaded = loaded.ne(0);
  if (as && *as != loaded.scalar_type()) loaded = loaded.to(*as);
  return loaded;
}

}  // namespace presso

// SafetensorsWriter: streams tensors to temporary files, then assembles the final file.
//
// Tensor data is streamed into one temporary file per element size (8, 4, 2, 1 bytes), and the
// final data section is those files concatenated, largest elements first, each in insertion order.
// With the header padded to a multiple of 8, every tensor then starts at a multiple of its own
// element size in the file, so zero-copy readers of the output (which may require aligned data)
// work, while peak memory stays one tensor and no gap breaks the format's contiguity rule.
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "lib/common/errors.h"
#include "lib/io/safetensors.h"

namespace presso {
namespace {

constexpr std::array<size_t, 4> kElementSizes = {8, 4, 2, 1};  // data section order
constexpr size_t kCopyChunkBytes = 1 << 20;

size_t bucket_of(size_t element_size) {
  for (size_t i = 0; i < kElementSizes.size(); ++i)
    if (kElementSizes[i] == element_size) return i;
  fail_internal("no safetensors dtype has {}-byte elements", element_size);
}

}  // namespace

struct SafetensorsWriter::Impl {
  struct Bucket {
    std::string path;
    std::FILE* file = nullptr;
    uint64_t size = 0;
  };

  std::string path;
  std::string final_temporary;
  std::map<std::string, std::string> metadata;
  std::array<Bucket, kElementSizes.size()> buckets;
  std::vector<TensorInfo> tensors;  // insertion order; offsets relative to their bucket
  std::vector<size_t> bucket_of_tensor;
  std::set<std::string> names;
  bool finished = false;

  [[noreturn]] void fail_io(const std::string& what, const std::string& file) const {
    fail_user("{}: cannot {} '{}': {}", path, what, file, std::strerror(errno));
  }

  void write_all(std::FILE* file, const void* bytes, size_t size, const std::string& file_path) {
    if (size > 0 && std::fwrite(bytes, 1, size, file) != size) fail_io("write", file_path);
  }

  void close_and_remove_temporaries() {
    for (Bucket& bucket : buckets) {
      if (bucket.file) std::fclose(bucket.file);
      bucket.file = nullptr;
      if (!bucket.path.empty()) std::remove(bucket.path.c_str());
    }
    std::remove(final_temporary.c_str());
  }

  std::string header_text() const;
  void assemble();
};

// The JSON header with final offsets, padded with spaces to a multiple of 8 bytes.
std::string SafetensorsWriter::Impl::header_text() const {
  std::array<uint64_t, kElementSizes.size()> bucket_start{};
  for (size_t i = 1; i < buckets.size(); ++i)
    bucket_start[i] = bucket_start[i - 1] + buckets[i - 1].size;
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& tensor = tensors[i];
    uint64_t base = bucket_start[bucket_of_tensor[i]];
    header[tensor.name] = {{"dtype", st_dtype_name(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {base + tensor.begin, base + tensor.end}}};
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::type_error& error) {
    fail_user("{}: tensor names and metadata must be valid UTF-8: {}", path, error.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void SafetensorsWriter::Impl::assemble() {
  std::string header = header_text();
  std::FILE* out = std::fopen(final_temporary.c_str(), "wb");
  if (!out) fail_io("create", final_temporary);
  try {
    std::array<uint8_t, 8> length_le;
    for (size_t i = 0; i < 8; ++i) length_le[i] = static_cast<uint8_t>(header.size() >> (8 * i));
    write_all(out, length_le.data(), length_le.size(), final_temporary);
    write_all(out, header.data(), header.size(), final_temporary);
    std::vector<char> chunk(kCopyChunkBytes);
    for (Bucket& bucket : buckets) {
      if (!bucket.file) continue;
      if (std::fflush(bucket.file) != 0) fail_io("write", bucket.path);
      std::rewind(bucket.file);
      size_t read;
      while ((read = std::fread(chunk.data(), 1, chunk.size(), bucket.file)) > 0)
        write_all(out, chunk.data(), read, final_temporary);
      if (std::ferror(bucket.file)) fail_io("read", bucket.path);
    }
    // The data must be on disk before the rename makes the file visible under its real name.
    if (std::fflush(out) != 0 || ::fsync(fileno(out)) != 0) fail_io("write", final_temporary);
  } catch (...) {
    std::fclose(out);
    throw;
  }
  if (std::fclose(out) != 0) fail_io("write", final_temporary);
  if (std::rename(final_temporary.c_str(), path.c_str()) != 0) fail_io("rename into place", path);
}

SafetensorsWriter::SafetensorsWriter(std::string path, std::map<std::string, std::string> metadata)
    : impl_(std::make_unique<Impl>()) {
  impl_->final_temporary = path + ".tmp";
  impl_->path = std::move(path);
  impl_->metadata = std::move(metadata);
}

SafetensorsWriter::~SafetensorsWriter() { impl_->close_and_remove_temporaries(); }

void SafetensorsWriter::add(const std::string& name, const torch::Tensor& tensor) {
  Impl& impl = *impl_;
  if (impl.finished) fail_internal("{}: tensor '{}' added after finish()", impl.path, name);
  if (name == "__metadata__")
    fail_user("{}: '__metadata__' is reserved by the format and cannot name a tensor", impl.path);
  if (impl.names.count(name)) fail_user("{}: tensor '{}' is added twice", impl.path, name);
  StDtype dtype;
  try {
    dtype = st_dtype_from_torch(tensor.scalar_type());
  } catch (const UserError& error) {
    fail_user("{}: tensor '{}': {}", impl.path, name, error.what());
  }
  // [shape...] contiguous on the CPU, so data_ptr() covers exactly the tensor's bytes in order.
  torch::Tensor host = tensor.detach().to(torch::kCPU).contiguous();
  size_t element_size = st_dtype_size(dtype);
  size_t bucket_index = bucket_of(element_size);
  Impl::Bucket& bucket = impl.buckets[bucket_index];
  if (!bucket.file) {
    bucket.path = fmt::format("{}.data{}.tmp", impl.path, element_size);
    bucket.file = std::fopen(bucket.path.c_str(), "w+b");
    if (!bucket.file) impl.fail_io("create", bucket.path);
  }
  uint64_t nbytes = static_cast<uint64_t>(host.numel()) * element_size;
  impl.write_all(bucket.file, host.data_ptr(), nbytes, bucket.path);

  TensorInfo info;
  info.name = name;
  info.dtype = dtype;
  info.shape = host.sizes().vec();
  info.begin = bucket.size;
  info.end = bucket.size + nbytes;
  bucket.size = info.end;
  impl.tensors.push_back(std::move(info));
  impl.bucket_of_tensor.push_back(bucket_index);
  impl.names.insert(name);
}

void SafetensorsWriter::finish() {
  Impl& impl = *impl_;
  if (impl.finished) fail_internal("{}: finish() called twice", impl.path);
  impl.finished = true;  // also after a failure: the temporaries are gone, the writer is spent
  try {
    impl.assemble();
  } catch (...) {
    impl.close_and_remove_temporaries();
    throw;
  }
  impl.close_and_remove_temporaries();
}

}  // namespace presso

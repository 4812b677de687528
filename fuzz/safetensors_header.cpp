// The safetensors header: the input is a whole file (length, JSON, data). An accepted header must
// keep the promise SafetensorsFile::load copies by: every tensor inside the data section, holding
// exactly product(shape) * dtype size bytes, and the tensors together covering the section.
#include <cstdint>

#include "fuzz/harness.h"
#include "lib/io/safetensors.h"

namespace presso {

bool fuzz_safetensors_header(std::string_view input) {
  const SafetensorsHeader header = parse_safetensors_header(
      reinterpret_cast<const uint8_t*>(input.data()), input.size(), "fuzz.safetensors");
  fuzz_expect(header.data_offset <= input.size(), "the data section starts inside the file");
  const uint64_t data_size = input.size() - header.data_offset;
  uint64_t covered = 0;
  for (const TensorInfo& tensor : header.tensors) {
    fuzz_expect(tensor.begin <= tensor.end && tensor.end <= data_size,
                "a tensor lies inside the data section");
    uint64_t elements = 1;
    for (int64_t dim : tensor.shape) {
      fuzz_expect(dim >= 0, "dimensions are non-negative");
      elements *= static_cast<uint64_t>(dim);
    }
    fuzz_expect(elements * st_dtype_size(tensor.dtype) == tensor.nbytes(),
                "a tensor's bytes match its shape and dtype");
    covered += tensor.nbytes();
  }
  fuzz_expect(covered == data_size, "the tensors cover the data section exactly");
  return true;
}

}  // namespace presso

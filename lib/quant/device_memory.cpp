#include "lib/quant/device_memory.h"

#ifdef PRESSO_WITH_CUDA_KERNELS
#include <cuda_runtime_api.h>
#endif

namespace presso {

std::optional<DeviceMemory> device_memory(const torch::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
#ifdef PRESSO_WITH_CUDA_KERNELS
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return std::nullopt;
  const int index = device.has_index() ? device.index() : previous;
  if (cudaSetDevice(index) != cudaSuccess) return std::nullopt;
  size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t status = cudaMemGetInfo(&free_bytes, &total_bytes);
  cudaSetDevice(previous);
  if (status != cudaSuccess) return std::nullopt;
  return DeviceMemory{free_bytes, total_bytes};
#else
  return std::nullopt;
#endif
}

}  // namespace presso

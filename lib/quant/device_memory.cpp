#include "lib/quant/device_memory.h"

#ifdef PRESSO_WITH_CUDA_KERNELS
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
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

std::optional<uint64_t> take_device_peak(const torch::Device& device) {
  if (!device.is_cuda()) return std::nullopt;
#ifdef PRESSO_WITH_CUDA_KERNELS
  namespace allocator = c10::cuda::CUDACachingAllocator;
  const c10::DeviceIndex index = device.has_index() ? device.index() : c10::cuda::current_device();
  const auto stats = allocator::getDeviceStats(index);
  const int64_t peak = stats.allocated_bytes[0].peak;  // [0]: every pool together (AGGREGATE)
  allocator::resetPeakStats(index);
  return static_cast<uint64_t>(peak);
#else
  return std::nullopt;
#endif
}

}  // namespace presso

// The memory of a CUDA device as its driver reports it. It lives in lib/quant, the layer built
// against the CUDA runtime when presso has CUDA kernels (CMakeLists.txt); elsewhere there is no
// CUDA device to ask.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>

namespace presso {

struct DeviceMemory {
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

// Free and total memory of `device` now (what LibTorch's allocator has cached counts as used);
// nullopt for a CPU, or a build without the CUDA runtime.
std::optional<DeviceMemory> device_memory(const torch::Device& device);

// The most bytes LibTorch's allocator had handed out on `device` at once since the previous call
// (or the start), and starts the next such interval; nullopt for a CPU, or a build without the
// CUDA runtime. What the driver reports, per block step, below what the device shows as used
// (the allocator's cache, the CUDA context).
std::optional<uint64_t> take_device_peak(const torch::Device& device);

}  // namespace presso

#include "lib/eval/runtime.h"

#include <cstdlib>
#include <optional>
#include <thread>

#include <ATen/Parallel.h>

#include <torch/cuda.h>
#include <torch/version.h>

#include "lib/common/errors.h"

namespace presso {

torch::Device parse_device(const std::string& text) {
  if (text != "cpu" && text.rfind("cuda", 0) != 0)
    fail_user("--device '{}': expected cpu, cuda or cuda:N", text);
  std::optional<torch::Device> device;
  try {
    device.emplace(text);
  } catch (const c10::Error&) {
    fail_user("--device '{}': expected cpu, cuda or cuda:N", text);
  }
  if (device->is_cuda()) {
    if (!torch::cuda::is_available())
      fail_user("--device {}: this build of LibTorch ({}) has no usable CUDA device", text,
                libtorch_description());
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (device->has_index() && device->index() >= count)
      fail_user("--device {}: only {} CUDA device(s) present", text, count);
  }
  return *device;
}

void use_all_cpu_cores() {
  if (std::getenv("OMP_NUM_THREADS") != nullptr) return;
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores > 0) at::set_num_threads(static_cast<int>(cores));
}

std::string libtorch_description() {
  return std::string("libtorch ") + TORCH_VERSION +
         (torch::cuda::is_available() ? " (cuda)" : " (cpu)");
}

}  // namespace presso

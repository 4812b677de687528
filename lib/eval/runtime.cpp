#include "lib/eval/runtime.h"

#include <cstdlib>
#include <limits>
#include <optional>
#include <thread>

#include <ATen/Parallel.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

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

void configure_runtime() {
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    const unsigned cores = std::thread::hardware_concurrency();
    if (cores > 0) at::set_num_threads(static_cast<int>(cores));
  }
  // A compress job allocates GPU tensors of many sizes (a block's weights, XᵀX of 4096² and
  // 11008², a window's scores); with segments that grow in place LibTorch's CUDA allocator does
  // not fragment (3 GB less at the peak of a 7B job). Read at its first allocation; a user's own
  // setting wins. LibTorch before 2.1 ignores it.
  setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True", /*overwrite=*/0);
}

void return_freed_memory() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 1 << 20);  // fixed, which also stops glibc raising it to 32 MB
#endif
}

void retain_freed_memory() {
#ifdef __GLIBC__
  mallopt(M_MMAP_MAX, 0);  // large blocks from the heap too, so they are reused, not unmapped
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
#endif
}

std::string libtorch_description() {
  return std::string("libtorch ") + TORCH_VERSION +
         (torch::cuda::is_available() ? " (cuda)" : " (cpu)");
}

}  // namespace presso

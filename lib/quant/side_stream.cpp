#include "lib/quant/side_stream.h"

#ifdef PRESSO_WITH_CUDA_KERNELS
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace presso {

struct SideStream::Impl {
#ifdef PRESSO_WITH_CUDA_KERNELS
  c10::cuda::CUDAStream stream;
#endif
};

SideStream::SideStream(const torch::Device& device) {
#ifdef PRESSO_WITH_CUDA_KERNELS
  if (!device.is_cuda()) return;
  const c10::DeviceIndex index = device.has_index() ? device.index() : c10::cuda::current_device();
  impl_.reset(new Impl{c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index)});
#else
  (void)device;
#endif
}

SideStream::~SideStream() = default;

void SideStream::run(const std::function<void()>& work) const {
#ifdef PRESSO_WITH_CUDA_KERNELS
  if (impl_) {
    const c10::cuda::CUDAStreamGuard guard(impl_->stream);
    struct WaitAtExit {  // on an error too: its tensors are freed as it propagates
      const c10::cuda::CUDAStream& stream;
      ~WaitAtExit() {
        try {
          stream.synchronize();
        } catch (...) {  // a CUDA error shows again at the main thread's next call
        }
      }
    } wait{impl_->stream};
    work();
    return;
  }
#endif
  work();
}

}  // namespace presso

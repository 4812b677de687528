// A CUDA stream of its own for work done on another thread, so that its GPU work runs beside
// what the main thread queues on the device's default stream instead of behind it, and its
// synchronisations (a copy to the host, a value read) wait for its own work alone. It lives in
// lib/quant, the layer built against the CUDA runtime when presso has CUDA kernels
// (CMakeLists.txt).
#pragma once

#include <torch/types.h>

#include <functional>
#include <memory>

namespace presso {

class SideStream {
 public:
  // On a CUDA `device`, one stream from LibTorch's pool, the same for every run() (the allocator
  // caches what a stream frees for that stream alone: a stream per task would cache a task's
  // memory each); nothing on a CPU, or in a build without the CUDA runtime.
  explicit SideStream(const torch::Device& device);
  ~SideStream();
  SideStream(const SideStream&) = delete;
  SideStream& operator=(const SideStream&) = delete;

  // Calls `work` with the stream current on this thread, then waits for the stream, so that the
  // tensors `work` used may be freed and reused by any stream. The tensors it reads must be
  // complete (the device synchronised since they were written).
  void run(const std::function<void()>& work) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace presso

// Overlapping a block's computation with the checkpoint I/O around it (`compress --overlap-io`,
// on by default on a GPU): the next block is read from the checkpoint on a thread of its own, and
// the finished one is written (and recorded in the resume journal) on another, from a host copy,
// while the device computes. On the CPU the cores are busy with the block itself and the extra
// block in flight costs host memory, so there both happen in line. Internal to the driver.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <string>

#include "lib/compress/pass.h"
#include "lib/model/model.h"
#include "lib/quant/side_stream.h"

namespace presso {

class BlockReader {
 public:
  BlockReader(const Model& model, bool ahead) : model_(model), ahead_(ahead) {}
  BlockReader(const BlockReader&) = delete;
  BlockReader& operator=(const BlockReader&) = delete;

  // Block `index` on the model's device (the one read ahead when it is that one, else read now);
  // with `ahead`, then starts reading block `next` (none when negative) on the host, so that the
  // GPU holds one block, not two. A read's error is thrown here.
  DecoderBlock take(int index, int next);

 private:
  // In page-locked memory when the model is on a GPU, for a fast copy there.
  DecoderBlock read_on_host(int index) const;

  const Model& model_;
  bool ahead_;
  int pending_index_ = -1;
  std::future<DecoderBlock> pending_;
};

// A finished block's tensors moved to the host, with its linears' states, whose `linear` point
// into it. A quantized linear's codes stay where they are (the writers pack them there, on a GPU
// far faster than on the host), and from a GPU its weight is left behind (undefined) when the
// codes reproduce it.
struct HostBlock {
  DecoderBlock block;
  std::map<std::string, LinearState> states;
};
HostBlock host_copy(const DecoderBlock& block, const std::map<std::string, LinearState>& states);

// Runs tasks one at a time, in order: in the background when enabled, else at once. A background
// task's GPU work on `device` goes to a stream of its own (lib/quant/side_stream.h), beside the
// next block's compute rather than queued behind it.
class BackgroundTasks {
 public:
  explicit BackgroundTasks(bool enabled, torch::Device device = torch::kCPU)
      : enabled_(enabled), stream_(device) {}
  // Waits for a task still running; its error is dropped (the caller's own is in flight).
  ~BackgroundTasks();
  BackgroundTasks(const BackgroundTasks&) = delete;
  BackgroundTasks& operator=(const BackgroundTasks&) = delete;

  // Waits for the previous task (its error is thrown here), then starts `task`.
  void submit(std::function<void()> task);
  // Waits for the last task; its error is thrown here.
  void wait();
  // Waits for the last task, dropping its error.
  void wait_quietly() noexcept;

 private:
  bool enabled_;
  SideStream stream_;
  std::future<void> pending_;
};

}  // namespace presso

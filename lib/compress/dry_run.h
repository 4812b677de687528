// `presso compress --dry-run`: the job resolved and costed without touching a weight — the plan
// per linear (passes, stored scheme, bytes in the output format), the output's size, and the
// estimated peak host and GPU memory and time of the real run. Everything a real run checks up
// front is checked (recipe, plan, format, --seqlen, calibration memory, output paths), so a dry
// run that passes means the real one starts.
//
// The memory estimate (memory_estimate.h) adds, to what the process holds once the checkpoint is
// open (measured, so LibTorch's and the allocator's own share is counted as it is on this
// machine), the parts the run allocates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/compress/driver.h"
#include "lib/compress/memory_estimate.h"
#include "lib/compress/pass.h"
#include "lib/quant/scheme.h"

namespace presso {

struct DryRunLayer {
  std::string name;
  int64_t out_features = 0;
  int64_t in_features = 0;
  std::vector<std::string> passes;
  std::optional<QuantScheme> scheme;  // stored quantized
  bool pruned = false;
  bool lowrank = false;
  bool tied = false;         // lm_head sharing the embedding's tensor
  double stored_bytes = 0;  // in the output format, adapter aside
};

struct DryRun {
  std::string serving;  // the verdict a real run prints first
  std::vector<std::string> notes;
  std::vector<DryRunLayer> layers;
  double output_bytes = 0;  // the whole output checkpoint
  double peak_host_bytes = 0;
  double peak_device_bytes = 0;  // 0 on the CPU
  std::vector<MemoryPart> host_parts;
  std::vector<MemoryPart> device_parts;
  int64_t batch_size = 0;  // calibration windows per block run
  double seconds = 0;      // estimated wall time
  double gemm_flops = 0;   // the fp32 matrix rate measured here, per second
};

// UserError for everything a real run would refuse before its first block.
DryRun dry_run_compress(const CompressOptions& options, const PassRegistry& registry);

// The dry run as the CLI prints it.
std::string format_dry_run(const DryRun& run, const CompressOptions& options);

}  // namespace presso

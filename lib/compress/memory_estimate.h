// What a `compress` run will hold at its peak, part by part, on the host and on a GPU: the
// dry run prints it, and a run on a GPU refuses up front when it cannot fit (check_device_fits).
//
// On the compute device (the host when it is the CPU) the run holds, per calibration token, the
// hidden state (fp32, or bf16 with --bf16-activations) and at most one kept module input (fp32:
// the MLP's input for down_proj's true-sequential re-collection), plus the hidden-state copies a
// pass keeps (AWQ); one batch's forward intermediates; the block's weights in fp32 and their
// originals as stored; the block's statistics (an fp32 XᵀX per distinct input). With
// --overlap-io the host also holds the next block, read ahead, and the last one being written.
// Coefficients are fitted to the measured peaks of the fixture models (docs/benchmarks.md, "Dry-run
// memory"; a test holds them within 25 %).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/compress/compression_plan.h"
#include "lib/compress/driver.h"
#include "lib/model/model.h"
#include "lib/quant/device_memory.h"

namespace presso {

struct MemoryPart {
  std::string what;
  double bytes = 0;
};

struct MemoryEstimate {
  std::vector<MemoryPart> host_parts;
  std::vector<MemoryPart> device_parts;  // empty on the CPU
  int64_t batch_size = 0;                // calibration windows per block run
  double host_bytes() const;
  double device_bytes() const;
};

MemoryEstimate estimate_memory(const CompressOptions& options, const CompressionPlan& job,
                               const Model& model);

// UserError, with the estimate part by part and what to change, when the run's device memory
// (estimate.device_bytes()) exceeds what `device` has free (`memory`, device_memory() of
// lib/quant/device_memory.h); nothing when the free memory is unknown (nullopt: a CPU, or a
// build without the CUDA runtime).
void check_device_fits(const MemoryEstimate& estimate, const std::string& device,
                       const std::optional<DeviceMemory>& memory);

// The shape of one block's work, for the estimates.
struct BlockShape {
  double parameters = 0;
  double statistics_bytes = 0;  // XᵀX per distinct input width of the targeted linears, fp32
  double solver_bytes = 0;      // the widest factorization's working matrices (below), fp32
  double solver_flops = 0;      // factor and sweep of the linears whose passes want XᵀX
  double hessian_flops = 0;     // per token: accumulating those XᵀX
};
BlockShape block_shape(const CompressionPlan& job, int block_index, const Model& model);

double file_bytes(const Model& model);  // the checkpoint's, all files

}  // namespace presso

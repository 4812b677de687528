// lib/compress: the pass interface, and the block-wise driver that runs a recipe's passes over a
// model (driver.h). A pass sees one decoder block at a time through a PassContext: the states of
// the linears it targets, the statistics it declared, and the grid constraints of the output
// format. It never reads files, parses YAML or prints; the driver never knows what a pass does.
// May include lib/ (model, quant, recipe, export) and calibration/.
#pragma once

#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "calibration/linear_statistics.h"
#include "lib/model/block.h"
#include "lib/model/family.h"
#include "lib/quant/grid.h"
#include "lib/quant/quantize.h"
#include "lib/recipe/schema.h"

namespace presso {

// One linear of the block being compressed.
struct LinearState {
  Linear* linear = nullptr;  // in the block: `weight` is the fp32 working copy [out, in]
  LinearInfo info;
  // Set by a quantizing pass, which also sets linear->weight to dequantize(*quant), so that the
  // block re-run and the written file see the same values.
  std::optional<QuantizedWeight> quant;
  std::optional<torch::Tensor> mask;  // [out, in] bool, true = weight kept (pruning passes)
  // What passes measured (e.g. "gptq_loss"), reported per layer in presso_report.json.
  std::map<std::string, double> metrics;
  // Things the user should know (e.g. a damping raised to factor the Hessian); the driver
  // reports them as warnings and in presso_report.json.
  std::vector<std::string> notes;
};

// What a pass may see and do while it runs on one block.
class PassContext {
 public:
  virtual ~PassContext() = default;

  virtual DecoderBlock& block() = 0;
  virtual const FamilySpec& family() const = 0;
  virtual torch::Device device() const = 0;
  // Full names of the linears of this block that the pass targets, in forward order.
  virtual const std::vector<std::string>& targets() const = 0;
  // InternalError for a linear outside targets().
  virtual LinearState& state(const std::string& linear_name) = 0;
  // The statistics the pass declared in wants(), gathered on this block's calibration inputs.
  virtual LinearStatistics& statistics(const std::string& linear_name) = 0;
  // What the output format needs of the grid of this linear (scale dtype, GPTQ v1's zero
  // point); a pass adds its own settings (mse) on top.
  virtual GridOptions grid_options(const std::string& linear_name) const = 0;
  // Runs the block, with its current (partly compressed) weights, over the calibration inputs
  // again and gathers `request` afresh for `linear_names`, so that a pass quantizing the block
  // group by group sees the inputs the already-quantized groups produce (true-sequential).
  virtual void recollect(const std::vector<std::string>& linear_names,
                         const StatsRequest& request) = 0;
};

class Pass {
 public:
  virtual ~Pass() = default;
  // Statistics needed for every targeted linear (none: the pass needs no calibration data).
  virtual StatsRequest wants() const = 0;
  virtual void run(PassContext& context) = 0;
  // For a pass that quantizes: the scheme its linears are stored in, and whether it saves a
  // non-trivial g_idx; the driver checks up front that the output format can hold them.
  virtual std::optional<QuantScheme> output_scheme() const { return std::nullopt; }
  virtual bool saves_g_idx() const { return false; }
};

// A registered pass: its recipe schema and how to build it from validated options.
struct PassFactory {
  PassSchema schema;
  std::function<std::unique_ptr<Pass>(const PassOptions&)> create;
};
using PassRegistry = std::vector<PassFactory>;

std::vector<PassSchema> registry_schemas(const PassRegistry& registry);
// InternalError naming the pass when it is not registered.
const PassFactory& find_pass(const PassRegistry& registry, const std::string& name);

// A QuantScheme from the quant_options() group of a pass's options (bits, group_size,
// symmetric).
QuantScheme scheme_from_options(const PassOptions& options);

// Records `quant` on the state and sets the working weight to its dequantized values.
void set_quantized(LinearState& state, QuantizedWeight quant);

}  // namespace presso

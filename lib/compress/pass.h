// lib/compress: the pass interface, and the block-wise driver that runs a recipe's passes over a
// model (driver.h). A pass sees one decoder block at a time through a PassContext: the states of
// the linears it targets, the block itself (any parameter may change), its calibration inputs,
// runs of the block or of one module with observers of its own, the ready-made statistics it
// declared, and each linear's original weight. What it leaves on a linear (codes and grid, a
// mask, a low-rank pair, metrics, notes) is typed in LinearState; what it will store is declared
// up front in plan(), so the output format is checked before any work. It never reads files,
// parses YAML or prints; the driver never knows what a pass does.
// May include lib/ (model, quant, sparse, recipe, export) and calibration/.
#pragma once

#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "calibration/input_observer.h"
#include "calibration/linear_statistics.h"
#include "lib/export/linear_plan.h"
#include "lib/model/block.h"
#include "lib/model/family.h"
#include "lib/quant/grid.h"
#include "lib/quant/quantize.h"
#include "lib/recipe/schema.h"

namespace presso {

// One linear of the block being compressed. `linear->weight` is always what the file stores for
// it (the dequantized codes once quantized, zeros where pruned), and `linear->lowrank` the
// residual path written beside it; the block re-run, the output-error measure and every writer
// read these same values. Change them through the set_* functions below, which keep them in step.
struct LinearState {
  Linear* linear = nullptr;  // in the block: fp32 [out, in]
  LinearInfo info;
  std::optional<QuantizedWeight> quant;  // codes and grid, from a quantizing pass
  std::optional<torch::Tensor> mask;     // [out, in] bool, true = weight kept (pruning passes)
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

  // The block: a pass may change any parameter (norm weights and biases too); to move a scale
  // between a producer and its consumers use fold_scale, which keeps statistics and original
  // weights in step.
  virtual DecoderBlock& block() = 0;
  virtual const FamilySpec& family() const = 0;
  virtual torch::Device device() const = 0;
  // Full names of the linears of this block that the pass targets, in forward order.
  virtual const std::vector<std::string>& targets() const = 0;
  // InternalError for a linear outside targets().
  virtual LinearState& state(const std::string& linear_name) = 0;
  // What the output format needs of the grid of this linear (scale dtype, GPTQ v1's zero
  // point); a pass adds its own settings (mse) on top.
  virtual GridOptions grid_options(const std::string& linear_name) const = 0;

  // Whether calibration data was given; without it the calls below are InternalErrors (the plan
  // refuses a recipe whose passes need data and have none).
  virtual bool has_calibration() const = 0;
  // The ready statistics the pass declared in wants(), gathered in the block's first run.
  virtual LinearStatistics& statistics(const std::string& linear_name) = 0;
  // Runs the block, with its current (partly compressed) weights, over the calibration inputs
  // again and gathers `request` afresh for `linear_names`, so that a pass quantizing the block
  // group by group sees the inputs the already-quantized groups produce (true-sequential).
  virtual void recollect(const std::vector<std::string>& linear_names,
                         const StatsRequest& request) = 0;
  // The block's calibration inputs, batch by batch: [B, T, hidden] fp32 on device().
  virtual int64_t calibration_batches() const = 0;
  virtual torch::Tensor calibration_batch(int64_t index) const = 0;
  // Runs the block with its current weights over every calibration batch; each observer sees
  // its linear's input (names outside the block are InternalErrors).
  virtual void observe(const ObserverMap& observers) = 0;
  // Runs one module of the block with its current weights on `input` [B, T, in]: a module of the
  // family ("self_attn", "mlp"), a linear by relative name ("mlp.down_proj"), or "" for the
  // whole block. `observers` (optional) see its linears' inputs.
  virtual torch::Tensor run_module(const std::string& module, const torch::Tensor& input,
                                   const ObserverMap& observers = {}) = 0;

  // Folds a per-channel scale s [channels] between `producer` (a norm or linear of the block,
  // by relative name) and `consumers` (the relative names of the linears reading exactly its
  // output): the producer's output channels are divided by s and the consumers' input columns
  // multiplied by it, so the float block computes the same function. Statistics already
  // gathered and the original weights follow (H becomes diag(1/s)·H·diag(1/s)). InternalError
  // for a producer or consumer that is already quantized or pruned.
  virtual void fold_scale(const std::string& producer, const std::vector<std::string>& consumers,
                          const torch::Tensor& s) = 0;
  // The linear's weight before any pass of this job, read from the checkpoint (not kept in
  // memory), in the block's current coordinates (scales folded so far applied): fp32 [out, in]
  // on device().
  virtual torch::Tensor original_weight(const std::string& linear_name) = 0;
};

// The whole model as a pass sees it before the first block: every linear it targets, and each
// one's original weight read from the checkpoint on demand (one at a time, never all in memory).
class ModelView {
 public:
  virtual ~ModelView() = default;
  // Full names in model order.
  virtual const std::vector<std::string>& targets() const = 0;
  // fp32 [out, in] on the compute device.
  virtual torch::Tensor original_weight(const std::string& linear_name) const = 0;
  // The decoder block holding a target.
  virtual int block_of(const std::string& linear_name) const = 0;
  // Whether calibration data was given; without it observe_dense is an InternalError.
  virtual bool has_calibration() const = 0;
  // Runs the calibration windows through the dense model as the checkpoint holds it, block by
  // block (one in memory at a time), before any block is compressed; each observer sees its
  // target's inputs. For a pass that needs every layer's activations before it prunes the first
  // (OWL's layer-wise sparsities); it costs a forward of the model, so only such passes call it.
  virtual void observe_dense(const ObserverMap& observers) const = 0;
};

class Pass {
 public:
  virtual ~Pass() = default;
  // Ready statistics gathered for every targeted linear in the block's first run, shared by all
  // passes (none: the pass gathers nothing up front, or needs no calibration data).
  virtual StatsRequest wants() const { return {}; }
  // A true-sequential pass gathers wants() afresh for each input group after the first itself
  // (for_each_input_group), so the block's first run gathers them for its first group only.
  virtual bool true_sequential() const { return false; }
  // For `compress --dry-run`'s estimates: what the pass costs beyond the driver's own work.
  struct Cost {
    double kept_activation_copies = 0;  // fp32 copies of the hidden states, per token, held at once
    double block_forwards = 0;          // runs of the block over the calibration windows
  };
  virtual Cost dry_run_cost() const { return {}; }
  // Whether the pass needs calibration data at all (its own observers or module runs count).
  virtual bool needs_calibration() const { return wants().any(); }
  // What the pass will leave on `plan`'s linear for the file (a scheme, a sparsity structure, a
  // low-rank path); passes are asked in recipe order, so a later quantizer overrides an earlier
  // one. The plan is checked against the output format before any work.
  virtual void plan(LinearPlan& plan) const { (void)plan; }
  // Once before the first block, for a pass that decides across layers (global magnitude
  // pruning); most need nothing here.
  virtual void prepare(const ModelView& model) { (void)model; }
  virtual void run(PassContext& context) = 0;
};

// A registered pass: its recipe schema (with its options and the llm-compressor modifiers that
// translate to it) and how to build it from validated options.
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

// Records `quant` on the state and sets the working weight to its dequantized values. Where the
// linear is pruned, the codes are set to the grid's zero so the weight stays exactly 0.
void set_quantized(LinearState& state, QuantizedWeight quant);
// Records `mask` ([out, in] bool, true = kept) and zeroes the pruned weights. InternalError on a
// quantized linear (prune first, then quantize).
void set_mask(LinearState& state, torch::Tensor mask);
// Sets the linear's low-rank path (A [rank, in], B [out, rank]).
void set_lowrank(LinearState& state, LowRankPair pair);

// The context's targets split by shared input (the family's sequential groups: q/k/v, o,
// gate/up, down), groups in forward order; a target the family does not group goes alone, last.
// The linears of one group read the same input, so one Hessian (one factorization) serves them;
// a true-sequential pass recollects before each group after the first.
std::vector<std::vector<std::string>> input_groups(PassContext& context);
std::vector<std::vector<std::string>> input_groups(const FamilySpec& family,
                                                   const DecoderBlock& block,
                                                   const std::vector<std::string>& targets);

// Calls `process` on each of input_groups(context) in forward order. With `true_sequential`,
// every group after the first first gathers `request` afresh (recollect) on the inputs that the
// groups already processed produce — the original GPTQ's `--true-sequential`.
void for_each_input_group(PassContext& context, bool true_sequential, const StatsRequest& request,
                          const std::function<void(const std::vector<std::string>&)>& process);

}  // namespace presso

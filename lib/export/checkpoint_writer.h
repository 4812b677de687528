// lib/export: writing a compressed model as a Hugging Face directory that other tools load.
// One in-memory result — dense tensors, and per changed linear its codes, mask and low-rank
// path — is written in any of the output formats (formats.h, one table row each); the row
// decides how a quantized linear is stored and what `quantization_config` says. Low-rank paths
// go to a PEFT LoRA adapter in `adapter/` beside the weights. May include lib/common, lib/io,
// lib/quant, lib/sparse, lib/model, nlohmann-json. Layouts byte by byte: docs/formats.md.
//
// The directory is built under a temporary name beside the destination and renamed into place by
// finish(); a writer destroyed before finish() (error, Ctrl-C) removes it, so an output directory
// either is complete or does not exist.
#pragma once

#include <torch/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/export/formats.h"
#include "lib/export/linear_plan.h"
#include "lib/model/block.h"
#include "lib/quant/grid.h"
#include "lib/quant/quantize.h"

namespace presso {

class Model;

class CheckpointWriter {
 public:
  // Starts `out_dir` for a model compressed from `source` (which must outlive the writer): the
  // files go to `<out_dir>.presso-tmp-<pid>` beside it, and the `*.presso-tmp-<pid>` that killed
  // runs left there are deleted. UserError when out_dir is or lies inside the source directory,
  // is not a directory, or exists and is not empty unless `overwrite` and it is an earlier presso
  // output (it has presso_report.json); the old one is replaced only by install(), never when it
  // holds the source. Parent directories it creates go again with an unfinished writer.
  CheckpointWriter(OutputFormat format, const std::string& out_dir, const Model& source,
                   bool overwrite);
  ~CheckpointWriter();
  // The temporary directories of killed runs that the constructor deleted.
  const std::vector<std::string>& removed_stale_temporaries() const;
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  OutputFormat format() const;

  // What the job stores for every linear it changes (from the passes' plans): decides the
  // storage of pruned linears and the sparsity metadata. Call before adding linears; without it
  // pruned linears are stored densely with no metadata.
  void set_plan(const std::vector<LinearPlan>& plan);
  // Dense format only: low-rank paths are added into the stored weights (W + B·A) instead of
  // written as an adapter, for research. InternalError for a packed format.
  void merge_lowrank();
  // A tensor written as given (name, dtype and layout of the source checkpoint); floating-point
  // ones in the format's model_dtype where it has one (UserError naming the tensor when a value
  // overflows it).
  void add_tensor(const std::string& name, const torch::Tensor& tensor);
  // A quantized linear: packed as the format says, or dequantized into `<name>.weight` of
  // `dtype` for the dense format (transposed back for a Conv1D). Its bias, if any, is written by
  // the caller with add_tensor. `dtype` is the source checkpoint's dtype of the weight.
  void add_quantized(const Linear& linear, const QuantizedWeight& weight, torch::ScalarType dtype);
  // A linear a pass changed but did not quantize (pruned, or scaled): `<name>.weight` of `dtype`
  // (the format's model_dtype where it has one), or compressed as sparse-24-bitmask where the
  // plan and format say so.
  void add_dense_linear(const Linear& linear, torch::ScalarType dtype);
  // The linear's low-rank path, written to the adapter (PEFT names) when finish() runs.
  void add_lowrank(const Linear& linear);
  // Writes model.safetensors (metadata {"format": "pt"}), config.json (the source's, with the
  // format's model_dtype as its dtype where it has one, plus
  // quantization_config for the packed formats: the schemes seen by add_quantized and, as
  // `ignore` / not-converted, every other linear of the model including lm_head; without one
  // for dense), copies the tokenizer and generation files, writes presso_report.json, and
  // renames the directory into place (an old one, with overwrite, is deleted after). UserError
  // listing checkpoint_problems() when the format cannot hold what was added — before any of
  // it is written; the writer then cleans up when destroyed. With low-rank paths, also
  // `adapter/adapter_config.json` and `adapter/adapter_model.safetensors`.
  void finish(const nlohmann::json& report);
  // finish() in its two steps, for a run with several outputs, which assembles all of them
  // before it installs any: assemble() writes every file into the temporary directory (and
  // refuses as finish() does), install() renames the directory into place.
  void assemble(const nlohmann::json& report);
  void install();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace presso

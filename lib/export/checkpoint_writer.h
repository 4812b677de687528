// lib/export: writing a compressed model as a Hugging Face directory that other tools load.
// One in-memory result — dense tensors plus QuantizedWeight per quantized linear — is written in
// any of the output formats; the format only decides how a QuantizedWeight is stored and what
// `quantization_config` says. May include lib/common, lib/io, lib/quant, lib/model,
// nlohmann-json. Layouts byte by byte: docs/formats.md.
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

#include "lib/model/block.h"
#include "lib/quant/grid.h"
#include "lib/quant/quantize.h"

namespace presso {

class Model;

enum class OutputFormat {
  kCompressedTensors,  // compressed-tensors `pack-quantized` (vLLM's native format); default
  kGptq,               // GPTQ v1: qweight / qzeros / scales / g_idx
  kAwq,                // AutoAWQ GEMM
  kDense,              // dequantized weights in the checkpoint's dtype, no quantization_config
};

// "compressed-tensors", "gptq", "awq", "dense"; UserError listing them for anything else.
OutputFormat output_format_from_name(const std::string& name);
const char* output_format_name(OutputFormat format);
std::vector<std::string> output_format_names();

// What a quantization grid must satisfy so that `format` stores it exactly: scale dtype (the
// weight's dtype for compressed-tensors and dense, fp16 for GPTQ and AWQ), and GPTQ v1's
// zero-point restriction. `weight_dtype` is the checkpoint's stored dtype of the weight.
GridOptions format_grid_options(OutputFormat format, torch::ScalarType weight_dtype);

// A linear the recipe will quantize, for checking up front that the format can store the plan.
struct PlannedQuantLinear {
  std::string name;
  int64_t out_features = 0;
  int64_t in_features = 0;
  QuantScheme scheme;
  bool g_idx = false;  // the pass will save a non-trivial g_idx (act-order with dynamic groups)
};

// Every reason `format` cannot hold the plan, one line each (GPTQ: bits outside {2,3,4,8},
// widths that are not whole words, several schemes in one model; AWQ: bits other than 4, out not
// a multiple of 8, g_idx, ...); empty when it can. `linears` is every linear the plan quantizes.
std::vector<std::string> format_problems(OutputFormat format,
                                         const std::vector<PlannedQuantLinear>& linears);

// format_problems, plus what depends on the model as a whole: GPTQ cannot leave a linear of the
// decoder blocks unquantized (its loaders quantize every one; compressed-tensors lists them in
// `ignore`, AWQ in `modules_to_not_convert`), and GPTQ / AWQ need at least one quantized linear.
// CheckpointWriter::finish() refuses with these; a driver can ask up front.
std::vector<std::string> checkpoint_problems(OutputFormat format, const Model& model,
                                             const std::vector<PlannedQuantLinear>& linears);

class CheckpointWriter {
 public:
  // Starts `out_dir` for a model compressed from `source` (which must outlive the writer): the
  // files go to `<out_dir>.presso-tmp-<pid>` beside it. UserError when out_dir is the source
  // directory, is not a directory, or exists and is not empty unless `overwrite` (the old one is
  // replaced only by finish(); never when it holds the source).
  CheckpointWriter(OutputFormat format, const std::string& out_dir, const Model& source,
                   bool overwrite);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  OutputFormat format() const;

  // A tensor written as given (name, dtype and layout of the source checkpoint).
  void add_tensor(const std::string& name, const torch::Tensor& tensor);
  // A quantized linear: packed as the format says, or dequantized into `<name>.weight` of
  // `dtype` for the dense format (transposed back for a Conv1D). Its bias, if any, is written by
  // the caller with add_tensor. `dtype` is the source checkpoint's dtype of the weight.
  void add_quantized(const Linear& linear, const QuantizedWeight& weight, torch::ScalarType dtype);
  // Writes model.safetensors (metadata {"format": "pt"}), config.json (the source's, plus
  // quantization_config for the packed formats: the schemes seen by add_quantized and, as
  // `ignore` / not-converted, every other linear of the model including lm_head; without one
  // for dense), copies the tokenizer and generation files, writes presso_report.json, and
  // renames the directory into place (an old one, with overwrite, is deleted after). UserError
  // listing checkpoint_problems() when the format cannot hold what was added — before any of
  // it is written; the writer then cleans up when destroyed.
  void finish(const nlohmann::json& report);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace presso

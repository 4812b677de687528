// lib/export: the output formats as data (as ggml's type_traits). One row per format says what
// it can store — bit widths, asymmetry, g_idx, a scheme per linear, sparsity metadata, linears
// left unquantized — and names the functions that store a linear, build config.json's
// `quantization_config`, and which of presso's readers loads it back. Code asks the row; nothing
// switches on the format elsewhere. Layouts byte by byte, and which engines run what:
// docs/formats.md.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lib/export/linear_plan.h"
#include "lib/model/block.h"
#include "lib/model/packed_weights.h"
#include "lib/quant/grid.h"
#include "lib/quant/quantize.h"

namespace presso {

class Model;
class SafetensorsWriter;

// The key of a row; the table, not this enum, says what a format does.
enum class OutputFormat {
  kCompressedTensors,  // compressed-tensors `pack-quantized` (vLLM's native format); default
  kGptq,               // GPTQ qweight / qzeros / scales / g_idx (v1 symmetric, v2 asymmetric)
  kAwq,                // AutoAWQ GEMM
  kDense,              // dequantized weights in the checkpoint's dtype
};

// Everything a format's quantization_config is built from.
struct FormatConfigInput {
  const Model& model;
  const std::vector<LinearPlan>& stored;  // every linear the job changed, in order
  // Zeros over all parameters written (compressed-tensors' global_sparsity).
  double global_sparsity = 0.0;
};

struct OutputFormatSpec {
  OutputFormat id;
  const char* name;     // "compressed-tensors"
  const char* summary;  // one line, for `presso list`

  // What it can store.
  std::vector<int> bits;              // widths of its codes; empty: stores dequantized weights
  bool asymmetric = true;             // zero points
  bool per_channel = true;            // group_size -1
  bool g_idx = false;                 // act-order's group indices
  int rows_multiple = 1;              // out_features of a quantized linear must be a multiple
  bool scheme_per_linear = false;     // else one scheme for the whole model
  bool leaves_block_linears = true;   // may leave linears of the blocks unquantized
  bool needs_quantization = false;    // refuses a job that quantizes nothing
  bool sparsity_metadata = false;     // records the sparsity structure in its config
  bool sparse_24_compressed = false;  // stores unquantized 2:4 linears compressed
  // The dtype every floating tensor and config.json's `dtype` are written in; nullopt keeps the
  // checkpoint's. GPTQ / AWQ: float16, their scales' dtype and the only activation dtype of vLLM's
  // plain gptq / awq kernels, so no engine casts the scales and serves another model.
  std::optional<torch::ScalarType> model_dtype;

  // The grid its scales must lie on for a weight stored as `weight_dtype`.
  GridOptions (*grid)(torch::ScalarType weight_dtype);
  // Layout rules of one quantized linear beyond the abilities above (whole words, ...).
  std::vector<std::string> (*layout_problems)(const LinearPlan& linear);
  // Writes a quantized linear's tensors; `dtype` is the checkpoint's dtype of its weight.
  void (*write_quantized)(SafetensorsWriter& out, const Linear& linear,
                          const QuantizedWeight& weight, torch::ScalarType dtype);
  // config.json's quantization_config, or nullopt for none.
  std::optional<nlohmann::json> (*quantization_config)(const FormatConfigInput& input);
  // How `presso eval` reads the output back (kNone: plain dense weights).
  PackedMethod read_back;
};

// The table, in the order `presso list` shows it.
const std::vector<OutputFormatSpec>& output_formats();
const OutputFormatSpec& format_spec(OutputFormat format);
// UserError listing the valid names for anything else.
OutputFormat output_format_from_name(const std::string& name);
const char* output_format_name(OutputFormat format);
std::vector<std::string> output_format_names();

// The grid `format` needs for a weight stored as `weight_dtype` (its row's grid function).
GridOptions format_grid_options(OutputFormat format, torch::ScalarType weight_dtype);

// Every reason `format` cannot hold the plan, one line each, from the row's abilities and layout
// rules; `linears` is every linear the job changes.
std::vector<std::string> format_problems(OutputFormat format,
                                         const std::vector<LinearPlan>& linears);

// format_problems, plus what depends on the model as a whole: a format that cannot leave linears
// of the blocks unquantized, or needs at least one quantized linear.
std::vector<std::string> checkpoint_problems(OutputFormat format, const Model& model,
                                             const std::vector<LinearPlan>& linears);

}  // namespace presso

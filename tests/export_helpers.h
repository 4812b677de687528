// Test helpers for lib/export: write a whole model in an output format, the way the compress
// driver does (every block linear quantized, every other tensor copied as stored), and an
// independent reader of the packed layouts written from docs/formats.md alone.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/export/checkpoint_writer.h"
#include "lib/io/safetensors.h"
#include "lib/model/model.h"
#include "lib/quant/quantize.h"

namespace presso::test {

// Returns the QuantizedWeight a block linear is stored with, or nullopt to leave it dense.
using LinearQuantizer =
    std::function<std::optional<QuantizedWeight>(const Linear& linear, const GridOptions& grid)>;

inline LinearQuantizer rtn_everywhere(const QuantScheme& scheme) {
  return [scheme](const Linear& linear, const GridOptions& grid) -> std::optional<QuantizedWeight> {
    return quantize_rtn(linear.weight, scheme, grid, linear.name);
  };
}

// The stored dtype of a block linear's weight.
inline torch::ScalarType stored_dtype(const Model& model, const std::string& linear) {
  return st_dtype_to_torch(model.tensors().info(linear + ".weight").dtype);
}

// Writes `model` in `format` to `out` (and, when `dense_out` is not empty, the same quantized
// weights densely there): every block linear through `quantize` on the grid `format` needs,
// every other stored tensor as it is. Returns the QuantizedWeights by linear name.
inline std::map<std::string, QuantizedWeight> write_model(
    const Model& model, OutputFormat format, const LinearQuantizer& quantize,
    const std::string& out, const std::string& dense_out = "",
    const nlohmann::json& report = {{"test", true}}) {
  std::vector<std::unique_ptr<CheckpointWriter>> writers;
  writers.push_back(std::make_unique<CheckpointWriter>(format, out, model, false));
  if (!dense_out.empty()) {
    writers.push_back(
        std::make_unique<CheckpointWriter>(OutputFormat::kDense, dense_out, model, false));
  }
  std::map<std::string, QuantizedWeight> quantized;
  std::set<std::string> written;
  for (int b = 0; b < model.num_blocks(); ++b) {
    const DecoderBlock block = model.load_block(b);
    for (const Linear& linear : block.linears) {
      const torch::ScalarType dtype = stored_dtype(model, linear.name);
      auto weight = quantize(linear, format_grid_options(format, dtype));
      if (!weight) continue;
      for (auto& writer : writers) writer->add_quantized(linear, *weight, dtype);
      written.insert(linear.name + ".weight");
      quantized.emplace(linear.name, std::move(*weight));
    }
  }
  for (const auto& name : model.tensors().names()) {
    if (written.count(name)) continue;
    const torch::Tensor tensor = model.tensors().load(name, std::nullopt);
    for (auto& writer : writers) writer->add_tensor(name, tensor);
  }
  for (auto& writer : writers) writer->finish(report);
  return quantized;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  return nlohmann::json::parse(read_file_bytes(path.string()));
}

// ---- The independent reader: scalar loops over the words, from docs/formats.md only. ----

// b-bit field at bit `pos` of the bit string words(0), words(1), ... (least significant first).
template <typename Word>
uint32_t bit_field(const Word& word, int64_t pos, int bits) {
  uint32_t value = 0;
  for (int j = 0; j < bits; ++j) {
    const int64_t bit = pos + j;
    value |= ((static_cast<uint32_t>(word(bit / 32)) >> (bit % 32)) & 1u) << j;
  }
  return value;
}

struct ReadScheme {
  int bits = 4;
  int64_t group_size = -1;  // -1: one group per row
  bool symmetric = true;
};

// The scheme quantization_config gives `linear`.
inline ReadScheme read_scheme(const nlohmann::json& q, const std::string& linear) {
  ReadScheme s;
  const std::string method = q.at("quant_method");
  if (method == "compressed-tensors") {
    for (const auto& [group_name, group] : q.at("config_groups").items()) {
      bool match = false;
      for (const auto& t : group.at("targets")) match = match || t == "Linear" || t == linear;
      if (!match) continue;
      const auto& w = group.at("weights");
      s.bits = w.at("num_bits");
      s.group_size = w.at("group_size").is_null() ? -1 : w.at("group_size").get<int64_t>();
      s.symmetric = w.at("symmetric");
      return s;
    }
    throw InternalError("no config group targets " + linear);
  }
  s.bits = q.at("bits");
  s.group_size = q.at("group_size");
  s.symmetric = method == "gptq" ? q.at("sym").get<bool>() : !q.at("zero_point").get<bool>();
  return s;
}

// The fp32 [out, in] weight (u − z)·scale of packed linear `name` in `file`; with `scale_dtype`,
// the scales rounded to it first (as an engine loads them into parameters of the model's dtype).
inline torch::Tensor read_packed_linear(const SafetensorsFile& file, const nlohmann::json& q,
                                        const std::string& name,
                                        std::optional<torch::ScalarType> scale_dtype = {}) {
  const ReadScheme s = read_scheme(q, name);
  const std::string method = q.at("quant_method");
  const int bits = s.bits;
  int64_t out = 0, in = 0;
  torch::Tensor weights, zeros, scales, g_idx;  // as stored
  if (method == "compressed-tensors") {
    const torch::Tensor shape = file.load(name + ".weight_shape");
    out = shape[0].item<int64_t>();
    in = shape[1].item<int64_t>();
    weights = file.load(name + ".weight_packed");
    if (file.contains(name + ".weight_zero_point")) zeros = file.load(name + ".weight_zero_point");
    scales = file.load(name + ".weight_scale", torch::kFloat32);
    if (file.contains(name + ".weight_g_idx")) g_idx = file.load(name + ".weight_g_idx");
  } else if (method == "gptq") {
    weights = file.load(name + ".qweight");
    out = weights.size(1);
    in = weights.size(0) * 32 / bits;
    zeros = file.load(name + ".qzeros");
    scales = file.load(name + ".scales", torch::kFloat32);
    g_idx = file.load(name + ".g_idx");
  } else {
    weights = file.load(name + ".qweight");
    in = weights.size(0);
    out = weights.size(1) * 8;
    zeros = file.load(name + ".qzeros");
    scales = file.load(name + ".scales", torch::kFloat32);
  }
  if (scale_dtype) scales = scales.to(*scale_dtype).to(torch::kFloat32);
  // GPTQ v1 stores z − 1, v2 (GPTQModel's gptq_v2) z itself.
  const int64_t gptq_zero_bias = q.value("checkpoint_format", "gptq") == "gptq_v2" ? 0 : 1;
  const int64_t group_size = s.group_size == -1 ? in : s.group_size;
  const int32_t* w = weights.data_ptr<int32_t>();
  const int32_t* z = zeros.defined() ? zeros.data_ptr<int32_t>() : nullptr;
  const float* sc = scales.data_ptr<float>();
  const int32_t* gi = g_idx.defined() ? g_idx.data_ptr<int32_t>() : nullptr;
  const int64_t offset = int64_t{1} << (bits - 1);
  static const int kAwqNibbleOfColumn[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // inverse of 0,2,4,6,1,3,5,7
  torch::Tensor result = torch::empty({out, in}, torch::kFloat32);
  float* r = result.data_ptr<float>();
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t c = 0; c < in; ++c) {
      const int64_t g = gi ? gi[c] : c / group_size;
      int64_t u = 0, zp = offset;  // unsigned code and zero point
      float scale = 0;
      if (method == "compressed-tensors") {
        const int64_t row_words = weights.size(1);
        u = bit_field([&](int64_t k) { return w[o * row_words + k]; }, c * bits, bits);
        if (z) {
          const int64_t groups = zeros.size(1);
          zp = bit_field([&](int64_t k) { return z[k * groups + g]; }, o * bits, bits);
        }
        scale = sc[o * scales.size(1) + g];
      } else if (method == "gptq") {
        u = bit_field([&](int64_t k) { return w[k * out + o]; }, c * bits, bits);
        const int64_t zero_words = zeros.size(1);
        zp = bit_field([&](int64_t k) { return z[g * zero_words + k]; }, o * bits, bits) +
             gptq_zero_bias;
        scale = sc[g * out + o];
      } else {
        const int64_t words = out / 8;
        const int nibble = kAwqNibbleOfColumn[o % 8];
        u = (static_cast<uint32_t>(w[c * words + o / 8]) >> (4 * nibble)) & 0xF;
        zp = (static_cast<uint32_t>(z[g * words + o / 8]) >> (4 * nibble)) & 0xF;
        scale = sc[g * out + o];
      }
      r[o * in + c] = static_cast<float>(u - zp) * scale;
    }
  }
  return result;
}

}  // namespace presso::test

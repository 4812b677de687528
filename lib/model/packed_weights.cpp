// Loading the packed tensors a PackedWeights describes (its config is read in packed_config.cpp).
#include "lib/model/packed_weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "lib/common/errors.h"
#include "lib/quant/pack_awq.h"
#include "lib/quant/pack_compressed_tensors.h"
#include "lib/quant/pack_gptq.h"
#include "lib/sparse/pack_24_bitmask.h"

namespace presso {

// Per method: which linears it packs, their stored tensors, and how one is unpacked.
struct PackedWeights::Reader {
  // compressed-tensors: the config decides; GPTQ / AWQ name no modules, the store does.
  static bool in_config(const PackedWeights& p, const std::string& name, const TensorStore&) {
    return p.group_of(name) != nullptr;
  }
  static bool has_qweight(const PackedWeights&, const std::string& name, const TensorStore& store) {
    return store.contains(name + ".qweight");
  }

  // The stored tensors of one packed linear, with messages naming the directory and tensor.
  struct Stored {
    const TensorStore& store;
    const std::string& name;
    const QuantScheme& scheme;
    int64_t out, in;
    bool gptq_v2;  // GPTQ qzeros hold z itself, not z − 1

    torch::Tensor tensor(const std::string& suffix) const {
      if (!store.contains(name + suffix)) {
        fail_user(
            "{}: tensor '{}{}' is missing from the checkpoint (config.json's "
            "quantization_config says '{}' is stored packed)",
            store.dir(), name, suffix, name);
      }
      return store.load(name + suffix, std::nullopt);
    }
    std::optional<torch::Tensor> optional_tensor(const std::string& suffix) const {
      if (!store.contains(name + suffix)) return std::nullopt;
      return store.load(name + suffix, std::nullopt);
    }
    void expect_shape(const std::string& suffix, const std::vector<int64_t>& shape) const {
      const std::vector<int64_t>& actual = store.info(name + suffix).shape;
      if (actual != shape) {
        fail_user(
            "{}: tensor '{}{}' has shape [{}], expected [{}] for a {} linear [{}, {}] from "
            "config.json",
            store.dir(), name, suffix, fmt::join(actual, ", "), fmt::join(shape, ", "),
            scheme_description(scheme), out, in);
      }
    }
  };

  static QuantizedWeight load_compressed_tensors(const Stored& s) {
    CompressedTensorsPacked packed;
    packed.weight_shape = s.tensor(".weight_shape");
    const torch::Tensor shape = packed.weight_shape.to(torch::kLong).flatten();
    std::vector<int64_t> values;
    for (int64_t i = 0; i < shape.numel(); ++i) values.push_back(shape[i].item<int64_t>());
    if (values != std::vector<int64_t>{s.out, s.in}) {
      fail_user("{}: tensor '{}.weight_shape' holds [{}], expected [{}, {}] from config.json",
                s.store.dir(), s.name, fmt::join(values, ", "), s.out, s.in);
    }
    packed.weight_packed = s.tensor(".weight_packed");
    packed.weight_scale = s.tensor(".weight_scale");
    packed.weight_zero_point = s.optional_tensor(".weight_zero_point");
    packed.weight_g_idx = s.optional_tensor(".weight_g_idx");
    return unpack_compressed_tensors(packed, s.scheme, s.name);
  }

  static QuantizedWeight load_gptq(const Stored& s) {
    GptqPacked packed;
    packed.qweight = s.tensor(".qweight");
    s.expect_shape(".qweight", {s.in * s.scheme.bits / 32, s.out});
    packed.qzeros = s.tensor(".qzeros");
    packed.scales = s.tensor(".scales");
    if (auto g_idx = s.optional_tensor(".g_idx")) {
      packed.g_idx = *g_idx;
    } else {
      const int64_t group_size = effective_group_size(s.scheme, s.in);
      packed.g_idx = torch::arange(s.in / group_size, torch::kInt32).repeat_interleave(group_size);
    }
    return s.gptq_v2 ? unpack_gptq_v2(packed, s.scheme, s.name)
                     : unpack_gptq_v1(packed, s.scheme, s.name);
  }

  static QuantizedWeight load_awq(const Stored& s) {
    AwqPacked packed;
    packed.qweight = s.tensor(".qweight");
    s.expect_shape(".qweight", {s.in, s.out / 8});
    packed.qzeros = s.tensor(".qzeros");
    packed.scales = s.tensor(".scales");
    return unpack_awq_gemm(packed, s.scheme, s.name);
  }

  // One row per quant_method presso reads: how its config parses, how it reads in `inspect`,
  // which linears it packs, their stored tensors, and how one is unpacked.
  struct Method {
    PackedMethod id;
    bool (*is_packed)(const PackedWeights&, const std::string&, const TensorStore&);
    std::vector<const char*> suffixes;
    QuantizedWeight (*load)(const Stored&);
  };

  static const std::vector<Method>& methods() {
    static const std::vector<Method> table = {
        {PackedMethod::kCompressedTensors,
         in_config,
         {".weight_packed", ".weight_scale", ".weight_zero_point", ".weight_shape",
          ".weight_g_idx"},
         load_compressed_tensors},
        {PackedMethod::kGptq, has_qweight, {".qweight", ".qzeros", ".scales", ".g_idx"}, load_gptq},
        {PackedMethod::kAwq, has_qweight, {".qweight", ".qzeros", ".scales", ".g_idx"}, load_awq},
    };
    return table;
  }

  static const Method* find(PackedMethod id) {
    for (const auto& method : methods())
      if (method.id == id) return &method;
    return nullptr;
  }
};

const PackedWeights::Group* PackedWeights::group_of(const std::string& name) const {
  for (const auto& target : ignore_)
    if (target.matches(name)) return nullptr;
  for (const auto& group : groups_)
    for (const auto& target : group.targets)
      if (target.matches(name)) return &group;
  return nullptr;
}

bool PackedWeights::is_packed(const std::string& name, const TensorStore& store) const {
  const Reader::Method* method = Reader::find(method_);
  return method && (method->is_packed(*this, name, store) || sparse_24(name, store));
}

bool PackedWeights::sparse_24(const std::string& name, const TensorStore& store) const {
  return sparse_24_ && store.contains(name + ".bitmask");
}
const QuantScheme& PackedWeights::scheme_of(const std::string& name) const {
  if (method_ != PackedMethod::kCompressedTensors) return scheme_;
  const Group* group = group_of(name);
  if (group == nullptr) fail_internal("'{}' is not a packed linear", name);
  return group->scheme;
}
std::vector<std::string> PackedWeights::stored_tensors(const std::string& name,
                                                       const TensorStore& store) const {
  std::vector<const char*> suffixes;
  if (sparse_24(name, store)) {
    suffixes = {".compressed", ".bitmask", ".shape"};
  } else if (const Reader::Method* method = Reader::find(method_)) {
    suffixes = method->suffixes;
  }
  std::vector<std::string> names;
  for (const char* suffix : suffixes)
    if (store.contains(name + suffix)) names.push_back(name + suffix);
  return names;
}

QuantizedWeight PackedWeights::load(const std::string& name, const TensorStore& store, int64_t out,
                                    int64_t in) const {
  if (sparse_24(name, store)) fail_internal("'{}' is stored sparse, not quantized", name);
  const Reader::Method* method = Reader::find(method_);
  if (!method) fail_internal("'{}' is not a packed linear", name);
  QuantizedWeight weight = method->load(
      Reader::Stored{store, name, scheme_of(name), out, in, version_ == "gptq_v2"});
  // vLLM creates the scales in the model's dtype and copies the checkpoint's into them.
  if (scale_dtype_) weight.scale = weight.scale.to(*scale_dtype_).to(torch::kFloat32);
  return weight;
}

torch::Tensor PackedWeights::load_dequantized(const std::string& name, const TensorStore& store,
                                              int64_t out, int64_t in) const {
  torch::NoGradGuard no_grad;
  if (sparse_24(name, store)) {
    const torch::Tensor dense = unpack_sparse24_bitmask(
        store.load(name + ".compressed", std::nullopt), store.load(name + ".bitmask", std::nullopt),
        store.load(name + ".shape", std::nullopt), name);
    if (dense.sizes() != torch::IntArrayRef({out, in})) {
      fail_user("{}: '{}' decompresses to [{}], expected [{}, {}] from config.json", store.dir(),
                name, fmt::join(dense.sizes(), ", "), out, in);
    }
    return dense.to(torch::kFloat32);
  }
  return dequantize(load(name, store, out, in));
}

}  // namespace presso

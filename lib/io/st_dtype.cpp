// The safetensors dtype table: header spelling, element size and LibTorch counterpart.
#include <array>

#include "lib/common/errors.h"
#include "lib/io/safetensors.h"

namespace presso {
namespace {

struct DtypeRow {
  StDtype dtype;
  const char* name;
  size_t size;
  torch::ScalarType torch_type;
};

// One row per StDtype, in enum order, so a dtype indexes its own row.
constexpr std::array<DtypeRow, 10> kDtypeTable = {{
    {StDtype::F64, "F64", 8, torch::kFloat64},
    {StDtype::F32, "F32", 4, torch::kFloat32},
    {StDtype::F16, "F16", 2, torch::kFloat16},
    {StDtype::BF16, "BF16", 2, torch::kBFloat16},
    {StDtype::I64, "I64", 8, torch::kInt64},
    {StDtype::I32, "I32", 4, torch::kInt32},
    {StDtype::I16, "I16", 2, torch::kInt16},
    {StDtype::I8, "I8", 1, torch::kInt8},
    {StDtype::U8, "U8", 1, torch::kUInt8},
    {StDtype::BOOL, "BOOL", 1, torch::kBool},
}};

const DtypeRow& row_of(StDtype dtype) { return kDtypeTable[static_cast<size_t>(dtype)]; }

}  // namespace

const char* st_dtype_name(StDtype dtype) { return row_of(dtype).name; }

size_t st_dtype_size(StDtype dtype) { return row_of(dtype).size; }

torch::ScalarType st_dtype_to_torch(StDtype dtype) { return row_of(dtype).torch_type; }

StDtype st_dtype_from_torch(torch::ScalarType type) {
  for (const DtypeRow& row : kDtypeTable)
    if (row.torch_type == type) return row.dtype;
  fail_user("tensors of dtype {} cannot be stored in safetensors (supported: {})",
            c10::toString(type), st_dtype_names());
}

std::optional<StDtype> st_dtype_from_name(const std::string& name) {
  for (const DtypeRow& row : kDtypeTable)
    if (name == row.name) return row.dtype;
  return std::nullopt;
}

std::string st_dtype_names() {
  std::string names;
  for (const DtypeRow& row : kDtypeTable) {
    if (!names.empty()) names += ", ";
    names += row.name;
  }
  return names;
}

}  // namespace presso

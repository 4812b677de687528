// Shape and value checks shared by the quantization kernels and the packed-layout readers.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace presso {

// "[4, 128]"
std::string shape_string(const torch::Tensor& t);

// UserError "tensor 'name': <what> must be <dtype> [sizes], got ..." unless it is.
void expect_tensor(const torch::Tensor& t, const std::vector<int64_t>& sizes,
                   torch::ScalarType dtype, const std::string& what,
                   const std::string& tensor_name);

// UserError unless g_idx is an integer tensor [in] with values in [0, groups).
void expect_g_idx(const torch::Tensor& g_idx, int64_t in, int64_t groups,
                  const std::string& tensor_name);

// Returns scale [.., ..] fp32 converted to `dtype`; InternalError when a value would change,
// i.e. the grid was not computed for this storage dtype (GridOptions::scale_dtype).
torch::Tensor exact_scale_cast(const torch::Tensor& scale, torch::ScalarType dtype,
                               const std::string& tensor_name);

// Whether every value of a floating-point tensor is finite; one reduction (a sum) unless the sum
// overflows.
bool all_finite(const torch::Tensor& t);

// g_idx [in] when it is not column / group_size, else nullopt (it carries no information).
std::optional<torch::Tensor> non_default_g_idx(const torch::Tensor& g_idx, int64_t group_size);

}  // namespace presso

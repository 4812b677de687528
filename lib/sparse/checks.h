// Argument checks shared by the mask kernels (layer-internal; the messages name the tensor).
#pragma once

#include <torch/types.h>

#include <string>

namespace presso {

// "[4, 128]"
std::string sparse_shape_string(const torch::Tensor& t);

// "tensor 'name'", or `fallback` when the name is empty.
std::string sparse_tensor_label(const std::string& tensor_name, const std::string& fallback);

// UserError unless t is a 2-d floating-point tensor [out, in] whose values are all finite
// (NaN or ±inf would have no place in an order of importance). `what`: "weight", "scores".
void expect_finite_matrix(const torch::Tensor& t, const std::string& what,
                          const std::string& tensor_name);

// UserError unless 0 <= sparsity < 1 (not NaN).
void expect_sparsity(double sparsity, const std::string& tensor_name);

}  // namespace presso

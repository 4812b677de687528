// Catch2 for test files that use LibTorch: LibTorch first, because Debian's build pulls in glog,
// whose CHECK macro must give way to Catch's.
#pragma once

#include <torch/types.h>
#undef CHECK
#include <catch2/catch.hpp>

// Relative error in the max norm, in float64, printed on failure.
inline double max_rel_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  const torch::Tensor e = expected.to(torch::kFloat64);
  return (actual.to(torch::kFloat64) - e).abs().max().item<double>() / e.abs().max().item<double>();
}

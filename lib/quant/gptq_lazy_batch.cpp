#include "lib/quant/gptq_lazy_batch.h"

#include <algorithm>

namespace presso::gptq_internal {
namespace {

// Spans of at least this many columns on CUDA, and at most kMaxSpan.
constexpr int64_t kTargetSpan = 512;
constexpr int64_t kMaxSpan = 2048;

// The span: the first multiple of the block size from kTargetSpan on that whole groups tile;
// one block where there is none, or off CUDA.
int64_t span_for(const torch::Device& device, int64_t block_size, int64_t group_size) {
  if (!device.is_cuda()) return block_size;
  for (int64_t span = block_size; span <= kMaxSpan; span += block_size) {
    if (span >= kTargetSpan && (group_size == 0 || span % group_size == 0)) return span;
  }
  return block_size;
}

}  // namespace

LazyBatchUpdate::LazyBatchUpdate(const torch::Tensor& w, const torch::Tensor& upper,
                                 int64_t block_size, int64_t group_size, bool column_major)
    : w_(w), upper_(upper), span_(span_for(w.device(), block_size, group_size)) {
  const int64_t out = w.size(0);
  const int64_t width = std::min(span_, w.size(1));
  errors_ = column_major ? torch::empty({width, out}, w.options()).t()
                         : torch::empty({out, width}, w.options());
}

torch::Tensor LazyBatchUpdate::block_errors(int64_t i1, int64_t i2) const {
  const int64_t start = i1 / span_ * span_;
  return errors_.slice(1, i1 - start, i2 - start);
}

void LazyBatchUpdate::apply(int64_t i1, int64_t i2) {
  const int64_t in = w_.size(1);
  const int64_t start = i1 / span_ * span_;
  const int64_t end = std::min(start + span_, in);
  // W[:, c1:c2] −= Err·U[k1:k2, c1:c2]
  const auto update = [&](const torch::Tensor& err, int64_t k1, int64_t k2, int64_t c1,
                          int64_t c2) {
    if (c1 < c2) w_.slice(1, c1, c2).addmm_(err, upper_.slice(0, k1, k2).slice(1, c1, c2), 1, -1);
  };
  if (i2 < end) {
    update(block_errors(i1, i2), i1, i2, i2, end);
  } else {
    update(errors_.slice(1, 0, end - start), start, end, end, in);
  }
}

}  // namespace presso::gptq_internal

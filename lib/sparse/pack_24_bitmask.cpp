#include "lib/sparse/pack_24_bitmask.h"

#include <cstdint>
#include <vector>

#include "lib/common/errors.h"

namespace presso {
namespace {

// "[4, 128]"
std::string sizes_string(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

std::string dtype_string(const torch::Tensor& t) { return c10::toString(t.scalar_type()); }

// Per group of four columns of bool [rows, cols]: how many are true, uint8 [rows, cols/4].
torch::Tensor count_per_group(const torch::Tensor& flags) {
  return flags.reshape({flags.size(0), flags.size(1) / 4, 4})
      .to(torch::kByte)
      .sum(-1, /*keepdim=*/false, torch::kByte);
}

// Row and first column of the first group whose count is not 2, for messages; counts
// [rows, cols/4] must hold such a group.
std::pair<int64_t, int64_t> first_bad_group(const torch::Tensor& counts) {
  const torch::Tensor where = counts.ne(2).nonzero()[0].cpu();
  return {where[0].item<int64_t>(), where[1].item<int64_t>() * 4};
}

// The columns upstream's get_24_bytemasks keeps, bool [rows, cols], given which weights are
// nonzero, nz [rows, cols] bool, at most two per group of four. |W|.view(-1, 4).topk(2, dim=1)
// keeps the nonzeros and fills up with zeros by the tie order of std::nth_element on four
// (|x|, column) pairs compared with `>` (PyTorch's topk_impl_loop; libstdc++'s introselect: one
// median-of-three partition, then an insertion sort of the first two): with no nonzero it keeps
// columns {2, 3}, with one nonzero at column 0, 1, 2, 3 it keeps {0, 2}, {1, 3}, {2, 3}, {2, 3}.
// Those five cases are exactly [nz0, nz1, !nz1, !nz0] (tests/sparse_layouts.cpp checks all
// patterns against torch::topk).
torch::Tensor upstream_kept_columns(const torch::Tensor& nz) {
  const int64_t rows = nz.size(0);
  const int64_t groups = nz.size(1) / 4;
  const torch::Tensor g = nz.reshape({rows, groups, 4});
  const torch::Tensor nz0 = g.select(2, 0);
  const torch::Tensor nz1 = g.select(2, 1);
  const torch::Tensor filled =
      torch::stack({nz0, nz1, torch::logical_not(nz1), torch::logical_not(nz0)}, 2);
  const torch::Tensor at_most_one = count_per_group(nz).lt(2).unsqueeze(2);  // [rows, groups, 1]
  return torch::where(at_most_one, filled, g).reshape({rows, groups * 4});
}

// bool [rows, cols] → uint8 [rows, ceil(cols/8)], column j at bit j % 8 of byte j / 8.
torch::Tensor pack_bits_lsb_first(const torch::Tensor& bits) {
  const int64_t rows = bits.size(0);
  const int64_t cols = bits.size(1);
  const int64_t bytes = (cols + 7) / 8;
  const torch::Tensor weights =
      torch::tensor(std::vector<uint8_t>{1, 2, 4, 8, 16, 32, 64, 128}, torch::kByte)
          .to(bits.device());
  const torch::Tensor padded = torch::constant_pad_nd(bits.to(torch::kByte), {0, bytes * 8 - cols});
  return (padded.reshape({rows, bytes, 8}) * weights).sum(-1, /*keepdim=*/false, torch::kByte);
}

// uint8 [rows, bytes] → bool [rows, cols], the inverse of pack_bits_lsb_first; bits past cols
// are dropped.
torch::Tensor unpack_bits_lsb_first(const torch::Tensor& bytes, int64_t cols) {
  const torch::Tensor weights =
      torch::tensor(std::vector<uint8_t>{1, 2, 4, 8, 16, 32, 64, 128}, torch::kByte)
          .to(bytes.device());
  return torch::bitwise_and(bytes.unsqueeze(-1), weights)
      .ne(0)
      .reshape({bytes.size(0), bytes.size(1) * 8})
      .narrow(1, 0, cols);
}

}  // namespace

Sparse24Packed pack_sparse24_bitmask(const torch::Tensor& weight, const torch::Tensor& mask,
                                     const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  if (weight.dim() != 2 || !weight.is_floating_point()) {
    fail_internal("tensor '{}': sparse-24-bitmask needs a 2-d floating-point weight, got {} {}",
                  tensor_name, dtype_string(weight), sizes_string(weight));
  }
  if (mask.scalar_type() != torch::kBool || mask.sizes() != weight.sizes() ||
      mask.device() != weight.device()) {
    fail_internal("tensor '{}': mask must be bool {} on {} like the weight, got {} {} on {}",
                  tensor_name, sizes_string(weight), weight.device().str(), dtype_string(mask),
                  sizes_string(mask), mask.device().str());
  }
  const int64_t rows = weight.size(0);
  const int64_t cols = weight.size(1);
  if (rows == 0 || cols == 0 || cols % 4 != 0) {
    fail_internal(
        "tensor '{}': sparse-24-bitmask needs a non-empty weight whose {} columns are a "
        "multiple of 4",
        tensor_name, cols);
  }
  const torch::Tensor counts = count_per_group(mask);
  if (counts.ne(2).any().item<bool>()) {
    const auto [row, col] = first_bad_group(counts);
    fail_internal("tensor '{}': mask is not 2:4: row {}, columns {}..{} keep {}, not 2",
                  tensor_name, row, col, col + 3, counts[row][col / 4].item<int64_t>());
  }
  // NaN counts as nonzero, as topk ranks NaN above every number.
  const torch::Tensor nonzero = weight.ne(0);  // [rows, cols]
  const torch::Tensor pruned_nonzero = torch::logical_and(nonzero, torch::logical_not(mask));
  if (pruned_nonzero.any().item<bool>()) {
    const torch::Tensor where = pruned_nonzero.nonzero()[0].cpu();
    const int64_t row = where[0].item<int64_t>();
    const int64_t col = where[1].item<int64_t>();
    fail_internal("tensor '{}': pruned weight [{}, {}] is {}, not 0", tensor_name, row, col,
                  weight[row][col].item<double>());
  }

  const torch::Tensor kept = upstream_kept_columns(nonzero);  // [rows, cols] bool, 2 per group
  Sparse24Packed packed;
  // masked_select walks row-major, as upstream's tensor[bytemasks] does.
  packed.compressed = weight.masked_select(kept).reshape({rows, cols / 2});
  packed.bitmask = pack_bits_lsb_first(kept);
  packed.shape = torch::tensor(std::vector<int64_t>{rows, cols}, torch::kLong)
                     .reshape({2, 1})
                     .to(weight.device());
  return packed;
}

torch::Tensor unpack_sparse24_bitmask(const torch::Tensor& compressed, const torch::Tensor& bitmask,
                                      const torch::Tensor& shape, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  const bool shape_ok =
      (shape.scalar_type() == torch::kLong || shape.scalar_type() == torch::kInt) &&
      (shape.sizes() == torch::IntArrayRef({2, 1}) || shape.sizes() == torch::IntArrayRef({2}));
  if (!shape_ok) {
    fail_user("tensor '{}': shape must be int64 [2, 1] (rows, cols), got {} {}", tensor_name,
              dtype_string(shape), sizes_string(shape));
  }
  const torch::Tensor dims = shape.reshape({2}).to(torch::kLong).cpu();
  const int64_t rows = dims[0].item<int64_t>();
  const int64_t cols = dims[1].item<int64_t>();
  if (rows <= 0 || cols <= 0 || cols % 4 != 0) {
    fail_user(
        "tensor '{}': shape must hold positive rows and a column count that is a multiple "
        "of 4, got [{}, {}]",
        tensor_name, rows, cols);
  }
  if (!compressed.is_floating_point() ||
      compressed.sizes() != torch::IntArrayRef({rows, cols / 2})) {
    fail_user(
        "tensor '{}': compressed must be floating point [{}, {}] for shape [{}, {}], got {} {}",
        tensor_name, rows, cols / 2, rows, cols, dtype_string(compressed),
        sizes_string(compressed));
  }
  const int64_t bytes = (cols + 7) / 8;
  if (bitmask.scalar_type() != torch::kByte ||
      bitmask.sizes() != torch::IntArrayRef({rows, bytes})) {
    fail_user("tensor '{}': bitmask must be uint8 [{}, {}] for shape [{}, {}], got {} {}",
              tensor_name, rows, bytes, rows, cols, dtype_string(bitmask), sizes_string(bitmask));
  }
  const torch::Tensor kept = unpack_bits_lsb_first(bitmask.to(compressed.device()), cols);
  const torch::Tensor counts = count_per_group(kept);
  if (counts.ne(2).any().item<bool>()) {
    const auto [row, col] = first_bad_group(counts);
    fail_user(
        "tensor '{}': bitmask row {} keeps {} of columns {}..{}; sparse-24-bitmask keeps "
        "exactly 2 of every 4",
        tensor_name, row, counts[row][col / 4].item<int64_t>(), col, col + 3);
  }
  // W: [rows, cols]; the kept count is rows·cols/2 = compressed's size, filled row-major.
  torch::Tensor dense = torch::zeros({rows, cols}, compressed.options());
  dense.masked_scatter_(kept, compressed);
  return dense;
}

}  // namespace presso

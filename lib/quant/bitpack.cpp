#include "lib/quant/bitpack.h"

#include <algorithm>
#include <vector>

#include "lib/common/errors.h"

namespace presso {
namespace {

constexpr int64_t kWordBits = 32;
constexpr int64_t kLowWordMask = (int64_t{1} << 32) - 1;

void check_bits(int bits) {
  if (bits < 1 || bits > 8) fail_internal("bit packing supports 1..8 bits, got {}", bits);
}

// Where each of the 32 values of a chunk (32 values = `bits` words) starts: word and bit offset.
struct ChunkLayout {
  torch::Tensor word;       // [32] int64: word holding the value's low bits
  torch::Tensor next_word;  // [32] int64: the following word, clamped into the chunk
  torch::Tensor offset;     // [32] int64: bit offset of the value in `word`
  torch::Tensor high_bits;  // [32] int64: how many of the value's bits spill into next_word
};

ChunkLayout chunk_layout(int bits, const torch::Device& device) {
  const torch::Tensor start =
      torch::arange(kWordBits, torch::TensorOptions().dtype(torch::kLong).device(device)) * bits;
  ChunkLayout layout;
  layout.word = start.div(kWordBits, "floor");
  layout.next_word = torch::clamp_max(layout.word + 1, bits - 1);
  layout.offset = start.remainder(kWordBits);
  layout.high_bits = torch::clamp_min(layout.offset + bits - kWordBits, 0);
  return layout;
}

// Words held as int64 in [0, 2^32) back to int32 with the same bit pattern.
torch::Tensor to_int32_bits(const torch::Tensor& words) {
  return torch::where(words >= (int64_t{1} << 31), words - (int64_t{1} << 32), words)
      .to(torch::kInt32);
}

torch::Tensor pack_lsb_first_rows(const torch::Tensor& values, int bits);
torch::Tensor unpack_lsb_first_rows(const torch::Tensor& words, int bits, int64_t count);

// The int64 intermediates take 8 bytes per value, several at once; rows go in slices of about
// this many values, so packing a large weight costs tens of MB, not several times its size.
constexpr int64_t kValuesPerSlice = int64_t{1} << 21;

// Runs `pack_rows` on slices of rows and concatenates the results along dim 0.
template <typename F>
torch::Tensor by_row_slices(int64_t rows, int64_t values_per_row, F pack_rows) {
  const int64_t step = std::max<int64_t>(1, kValuesPerSlice / std::max<int64_t>(values_per_row, 1));
  if (rows <= step) return pack_rows(0, rows);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < rows; start += step) {
    parts.push_back(pack_rows(start, std::min(rows, start + step)));
  }
  return torch::cat(parts, 0);
}

}  // namespace

torch::Tensor pack_lsb_first(const torch::Tensor& values, int bits) {
  check_bits(bits);
  if (values.dim() != 2) fail_internal("pack_lsb_first: values must be 2-d, got {}", values.dim());
  return by_row_slices(values.size(0), values.size(1), [&](int64_t begin, int64_t end) {
    return pack_lsb_first_rows(values.slice(0, begin, end), bits);
  });
}

torch::Tensor unpack_lsb_first(const torch::Tensor& words, int bits, int64_t count) {
  check_bits(bits);
  if (words.dim() != 2 || words.scalar_type() != torch::kInt32) {
    fail_internal("unpack_lsb_first: words must be 2-d int32, got {}-d {}", words.dim(),
                  c10::toString(words.scalar_type()));
  }
  return by_row_slices(words.size(0), count, [&](int64_t begin, int64_t end) {
    return unpack_lsb_first_rows(words.slice(0, begin, end), bits, count);
  });
}

namespace {

torch::Tensor pack_lsb_first_rows(const torch::Tensor& values, int bits) {
  const int64_t rows = values.size(0);
  const int64_t n = values.size(1);
  const int64_t packed_words = (n * bits + kWordBits - 1) / kWordBits;
  if (values.numel() > 0 &&
      (values.min().item<int64_t>() < 0 || values.max().item<int64_t>() >= (int64_t{1} << bits))) {
    fail_internal("pack_lsb_first: values must lie in [0, {}), got [{}, {}]", int64_t{1} << bits,
                  values.min().item<int64_t>(), values.max().item<int64_t>());
  }
  const int64_t chunks = (n + kWordBits - 1) / kWordBits;
  // u: [rows, chunks, 32], zero-padded at the end of each row.
  const torch::Tensor u =
      torch::constant_pad_nd(values.to(torch::kLong), {0, chunks * kWordBits - n})
          .reshape({rows, chunks, kWordBits});
  const ChunkLayout layout = chunk_layout(bits, u.device());
  // Value bits never overlap, so summing the shifted parts into each word is an OR.
  const torch::Tensor low = torch::bitwise_left_shift(u, layout.offset) & kLowWordMask;
  // Non-straddling values shift right by ≥ bits here, contributing 0 to next_word.
  const torch::Tensor high = torch::bitwise_right_shift(u, kWordBits - layout.offset);
  torch::Tensor words = torch::zeros({rows, chunks, bits}, u.options());
  words.scatter_add_(2, layout.word.expand({rows, chunks, kWordBits}), low);
  words.scatter_add_(2, layout.next_word.expand({rows, chunks, kWordBits}), high);
  return to_int32_bits(words.reshape({rows, chunks * bits}).narrow(1, 0, packed_words))
      .contiguous();
}

torch::Tensor unpack_lsb_first_rows(const torch::Tensor& words, int bits, int64_t count) {
  const int64_t rows = words.size(0);
  const int64_t needed = (count * bits + kWordBits - 1) / kWordBits;
  if (words.size(1) < needed) {
    fail_internal("unpack_lsb_first: {} values of {} bits need {} words, got {}", count, bits,
                  needed, words.size(1));
  }
  const int64_t chunks = (count + kWordBits - 1) / kWordBits;
  // w: [rows, chunks, bits] as int64 in [0, 2^32), zero-padded to whole chunks.
  const torch::Tensor w =
      torch::constant_pad_nd(words.narrow(1, 0, needed).to(torch::kLong) & kLowWordMask,
                             {0, chunks * bits - needed})
          .reshape({rows, chunks, bits});
  const ChunkLayout layout = chunk_layout(bits, w.device());
  const int64_t mask = (int64_t{1} << bits) - 1;
  const auto gather = [&](const torch::Tensor& index) {
    return w.index_select(2, index);  // [rows, chunks, 32]
  };
  const torch::Tensor low = torch::bitwise_right_shift(gather(layout.word), layout.offset);
  // Masking the next word to the spilled bits first keeps the left shift below 2^63.
  const torch::Tensor spill_mask =
      torch::bitwise_left_shift(torch::ones_like(layout.high_bits), layout.high_bits) - 1;
  const torch::Tensor high =
      torch::bitwise_left_shift(gather(layout.next_word) & spill_mask, kWordBits - layout.offset);
  return ((low | high) & mask)
      .reshape({rows, chunks * kWordBits})
      .narrow(1, 0, count)
      .to(torch::kInt32)
      .contiguous();
}

}  // namespace

}  // namespace presso

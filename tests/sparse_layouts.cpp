// compressed-tensors `sparse-24-bitmask` layout: hand-computed bytes, a byte-for-byte comparison
// with a slow loop packer that follows upstream literally (get_24_bytemasks' topk as PyTorch's
// topk_impl_loop computes it, then bit by bit), the kept columns against torch::topk itself (the
// call upstream makes), exact round trips, and the malformed inputs both directions refuse.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "lib/common/errors.h"
#include "lib/sparse/pack_24_bitmask.h"
#include "tests/catch_torch.h"

using namespace presso;

namespace {

// The same bits as an integer tensor, so comparisons see -0.0 and NaN payloads.
torch::Tensor bits_of(const torch::Tensor& t) {
  switch (t.element_size()) {
    case 2:
      return t.contiguous().view(torch::kShort);
    case 4:
      return t.contiguous().view(torch::kInt);
    default:
      return t.contiguous().view(torch::kLong);
  }
}

bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         torch::equal(bits_of(a), bits_of(b));
}

// Upstream's compressor, one element at a time: for each group of four, the two columns that
// PyTorch's CPU topk_impl_loop returns for topk(2) of |x| (std::nth_element with its comparator,
// NaN first), then their values in column order and their bits LSB first.
Sparse24Packed pack_sparse24_bitmask_ref(const torch::Tensor& weight) {
  const int64_t rows = weight.size(0);
  const int64_t cols = weight.size(1);
  const torch::Tensor magnitude = weight.abs().to(torch::kFloat).contiguous();
  const torch::Tensor raw = bits_of(weight).to(torch::kLong);
  auto m = magnitude.accessor<float, 2>();
  auto w = raw.accessor<int64_t, 2>();
  torch::Tensor compressed_raw = torch::zeros({rows, cols / 2}, torch::kLong);
  torch::Tensor bitmask = torch::zeros({rows, (cols + 7) / 8}, torch::kByte);
  auto c_out = compressed_raw.accessor<int64_t, 2>();
  auto b_out = bitmask.accessor<uint8_t, 2>();
  using Elem = std::pair<float, int64_t>;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t next = 0;
    for (int64_t g = 0; g < cols; g += 4) {
      std::vector<Elem> queue;
      for (int64_t j = 0; j < 4; ++j) queue.emplace_back(m[r][g + j], j);
      std::nth_element(queue.begin(), queue.begin() + 1, queue.end(),
                       [](const Elem& x, const Elem& y) {
                         return (std::isnan(x.first) && !std::isnan(y.first)) || x.first > y.first;
                       });
      bool kept[4] = {false, false, false, false};
      kept[queue[0].second] = kept[queue[1].second] = true;
      for (int64_t j = 0; j < 4; ++j) {
        if (!kept[j]) continue;
        const int64_t c = g + j;
        c_out[r][next++] = w[r][c];
        b_out[r][c / 8] = static_cast<uint8_t>(b_out[r][c / 8] | (1u << (c % 8)));
      }
    }
  }
  Sparse24Packed packed;
  packed.compressed = compressed_raw.to(bits_of(weight).scalar_type()).view(weight.scalar_type());
  packed.bitmask = bitmask;
  packed.shape = torch::tensor(std::vector<int64_t>{rows, cols}).reshape({2, 1});
  return packed;
}

// Upstream's mask expression verbatim: |W|.view(-1, 4).topk(2, dim=1) scattered into a bool mask.
torch::Tensor torch_topk_mask(const torch::Tensor& weight) {
  // LibTorch 1.13 has no CPU topk for fp16; |x| is exact in fp32, so ranks and ties are the same.
  torch::Tensor magnitude = weight.reshape({-1, 4}).abs();
  if (magnitude.scalar_type() == torch::kHalf) magnitude = magnitude.to(torch::kFloat);
  const torch::Tensor indices = std::get<1>(magnitude.topk(2, 1));
  return torch::zeros({weight.numel() / 4, 4}, torch::kBool)
      .scatter_(1, indices, true)
      .reshape(weight.sizes());
}

// bool [rows, cols] from a packed bitmask, bit by bit.
torch::Tensor bitmask_columns_ref(const torch::Tensor& bitmask, int64_t cols) {
  torch::Tensor out = torch::zeros({bitmask.size(0), cols}, torch::kBool);
  auto b = bitmask.accessor<uint8_t, 2>();
  auto o = out.accessor<bool, 2>();
  for (int64_t r = 0; r < bitmask.size(0); ++r)
    for (int64_t c = 0; c < cols; ++c) o[r][c] = (b[r][c / 8] >> (c % 8)) & 1;
  return out;
}

// A random 2:4 mask [rows, cols]: one of the six pairs in each group of four.
torch::Tensor random_24_mask(int64_t rows, int64_t cols) {
  const torch::Tensor pairs = torch::tensor({1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1,  //
                                             0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1})
                                  .reshape({6, 4})
                                  .to(torch::kBool);
  return pairs.index({torch::randint(6, {rows * cols / 4}, torch::kLong)}).reshape({rows, cols});
}

torch::Tensor row_of(std::vector<float> values, torch::ScalarType dtype = torch::kFloat) {
  const int64_t n = static_cast<int64_t>(values.size());
  return torch::tensor(values).reshape({1, n}).to(dtype);
}

torch::Tensor bool_row(std::vector<int> flags) {
  const int64_t n = static_cast<int64_t>(flags.size());
  return torch::tensor(flags).reshape({1, n}).to(torch::kBool);
}

template <typename E, typename F>
void require_error(F&& call, const std::string& needle) {
  try {
    call();
    FAIL("expected an error mentioning '" << needle << "'");
  } catch (const E& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("sparse-24-bitmask packs a hand-computed row", "[unit]") {
  // Kept columns 1, 3, 4, 6 → bits 1, 3, 4, 6 of byte 0 = 0b0101'1010.
  const torch::Tensor w = row_of({0, 5, 0, 7, 1, 0, 2, 0}, torch::kBFloat16);
  const Sparse24Packed packed = pack_sparse24_bitmask(w, w.ne(0), "layers.0.mlp.up_proj.weight");
  CHECK(same_bits(packed.compressed, row_of({5, 7, 1, 2}, torch::kBFloat16)));
  REQUIRE(packed.bitmask.sizes() == torch::IntArrayRef({1, 1}));
  CHECK(packed.bitmask.scalar_type() == torch::kByte);
  CHECK(packed.bitmask.item<uint8_t>() == 0x5A);
  CHECK(packed.shape.scalar_type() == torch::kLong);
  CHECK(torch::equal(packed.shape, torch::tensor(std::vector<int64_t>{1, 8}).reshape({2, 1})));
  CHECK(same_bits(unpack_sparse24_bitmask(packed.compressed, packed.bitmask, packed.shape), w));
}

TEST_CASE("sparse-24-bitmask rounds the bitmask width up for 12 columns", "[unit]") {
  // Kept 0, 1, 6, 7 → byte 0 = 0b1100'0011; kept 9, 11 → bits 1, 3 of byte 1, bits 4..7 zero.
  const torch::Tensor w = row_of({1, 2, 0, 0, 0, 0, 3, 4, 0, 5, 0, 6}).repeat({3, 1});
  const Sparse24Packed packed = pack_sparse24_bitmask(w, w.ne(0));
  REQUIRE(packed.bitmask.sizes() == torch::IntArrayRef({3, 2}));
  CHECK(
      torch::equal(packed.bitmask, torch::tensor(std::vector<uint8_t>{0xC3, 0x0A}).repeat({3, 1})));
  CHECK(torch::equal(packed.compressed, row_of({1, 2, 3, 4, 5, 6}).repeat({3, 1})));
  CHECK(same_bits(unpack_sparse24_bitmask(packed.compressed, packed.bitmask, packed.shape), w));
  // numpy.unpackbits(count=12) ignores the padding bits, and so does the reader.
  torch::Tensor padded = packed.bitmask.clone();
  padded.select(1, 1).fill_(0xFA);
  CHECK(same_bits(unpack_sparse24_bitmask(packed.compressed, padded, packed.shape), w));
}

TEST_CASE("sparse-24-bitmask keeps upstream's choice of zeros when a kept weight is zero",
          "[unit]") {
  // The mask keeps {0, 1} and {4, 5}; the values hold no nonzero in the first group and one at
  // column 5 in the second, so topk picks columns 2, 3 and 5, 7: bits 2, 3, 5, 7 = 0xAC.
  const torch::Tensor w = row_of({0, 0, 0, 0, 0, 3, 0, 0});
  const torch::Tensor mask = bool_row({1, 1, 0, 0, 1, 1, 0, 0});
  const Sparse24Packed packed = pack_sparse24_bitmask(w, mask);
  CHECK(packed.bitmask.item<uint8_t>() == 0xAC);
  CHECK(torch::equal(packed.compressed, row_of({0, 0, 3, 0})));
  CHECK(torch::equal(bitmask_columns_ref(packed.bitmask, 8), torch_topk_mask(w)));
  CHECK(same_bits(unpack_sparse24_bitmask(packed.compressed, packed.bitmask, packed.shape), w));
}

TEST_CASE("sparse-24-bitmask kept columns equal torch::topk for every nonzero pattern", "[unit]") {
  // Every pattern of at most two nonzeros in a group, under every 2:4 mask covering it, with
  // both signs of zero at the other columns and the three storage dtypes.
  std::mt19937 rng(5);
  for (const auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    for (int pattern = 0; pattern < 16; ++pattern) {
      if (__builtin_popcount(pattern) > 2) continue;
      for (int keep = 0; keep < 16; ++keep) {
        if (__builtin_popcount(keep) != 2 || (pattern & ~keep) != 0) continue;
        for (int signs = 0; signs < 16; ++signs) {
          std::vector<float> values(4);
          std::vector<int> flags(4);
          for (int j = 0; j < 4; ++j) {
            const float zero = (signs >> j & 1) ? -0.0f : 0.0f;
            values[j] = (pattern >> j & 1) ? 0.5f + static_cast<float>(rng() % 100) : zero;
            if (pattern >> j & 1 && rng() % 2) values[j] = -values[j];
            flags[j] = keep >> j & 1;
          }
          const torch::Tensor w = row_of(values, dtype);
          INFO("dtype " << c10::toString(dtype) << " pattern " << pattern << " mask " << keep
                        << " signs " << signs);
          const Sparse24Packed packed = pack_sparse24_bitmask(w, bool_row(flags));
          const Sparse24Packed ref = pack_sparse24_bitmask_ref(w);
          CHECK(torch::equal(bitmask_columns_ref(packed.bitmask, 4), torch_topk_mask(w)));
          CHECK(torch::equal(packed.bitmask, ref.bitmask));
          CHECK(same_bits(packed.compressed, ref.compressed));
          const torch::Tensor back =
              unpack_sparse24_bitmask(packed.compressed, packed.bitmask, packed.shape);
          CHECK(torch::equal(back, w));  // the same values; a zero's sign may differ
        }
      }
    }
  }
}

TEST_CASE("sparse-24-bitmask packing matches the loop reference and round-trips", "[unit]") {
  std::mt19937 rng(24);
  const torch::ScalarType dtypes[] = {torch::kFloat, torch::kBFloat16, torch::kHalf};
  for (int trial = 0; trial < 36; ++trial) {
    const torch::ScalarType dtype = dtypes[trial % 3];
    const int64_t rows = 1 + rng() % 24;
    const int64_t cols = 4 * (1 + rng() % 20);  // half of them not a multiple of 8
    const bool degenerate = trial % 4 == 3;     // some kept weights exactly ±0
    torch::manual_seed(900 + trial);
    const torch::Tensor mask = random_24_mask(rows, cols);
    torch::Tensor w = torch::randn({rows, cols}).to(dtype).masked_fill(mask.logical_not(), 0);
    if (degenerate) {
      const torch::Tensor zap = torch::rand({rows, cols}).lt(0.3);
      w.masked_fill_(zap.logical_and(mask), 0);
      w.masked_fill_(torch::rand({rows, cols}).lt(0.2).logical_and(zap), -0.0);
    }
    INFO("trial " << trial << " " << c10::toString(dtype) << " [" << rows << ", " << cols
                  << "] degenerate " << degenerate);
    const Sparse24Packed fast = pack_sparse24_bitmask(w, mask, "w");
    const Sparse24Packed ref = pack_sparse24_bitmask_ref(w);
    REQUIRE(fast.compressed.sizes() == torch::IntArrayRef({rows, cols / 2}));
    REQUIRE(fast.bitmask.sizes() == torch::IntArrayRef({rows, (cols + 7) / 8}));
    CHECK(same_bits(fast.compressed, ref.compressed));
    CHECK(torch::equal(fast.bitmask, ref.bitmask));
    CHECK(torch::equal(fast.shape, ref.shape));
    const torch::Tensor kept = bitmask_columns_ref(fast.bitmask, cols);
    CHECK(torch::equal(kept, torch_topk_mask(w)));
    if (!degenerate) CHECK(torch::equal(kept, mask));  // every kept weight nonzero
    const torch::Tensor back = unpack_sparse24_bitmask(fast.compressed, fast.bitmask, fast.shape);
    CHECK(back.scalar_type() == dtype);
    if (degenerate) {
      CHECK(torch::equal(back, w));
    } else {
      CHECK(same_bits(back, w));  // pruned weights are +0, as masked_fill leaves them
    }
  }
}

TEST_CASE("sparse-24-bitmask reader accepts a [2] or int32 shape", "[unit]") {
  const torch::Tensor w = row_of({0, 5, 0, 7, 1, 0, 2, 0});
  const Sparse24Packed packed = pack_sparse24_bitmask(w, w.ne(0));
  CHECK(torch::equal(
      unpack_sparse24_bitmask(packed.compressed, packed.bitmask, packed.shape.reshape({2})), w));
  CHECK(torch::equal(
      unpack_sparse24_bitmask(packed.compressed, packed.bitmask, packed.shape.to(torch::kInt)), w));
}

TEST_CASE("sparse-24-bitmask writer refuses what is not a 2:4 weight", "[unit]") {
  const std::string name = "model.layers.2.self_attn.q_proj.weight";
  const torch::Tensor w = row_of({0, 5, 0, 7, 1, 0, 2, 0});
  const torch::Tensor mask = w.ne(0);
  require_error<InternalError>(
      [&] {
        pack_sparse24_bitmask(row_of({1, 2, 0, 0, 0, 0}), bool_row({1, 1, 0, 0, 1, 1}), name);
      },
      name);
  require_error<InternalError>(
      [&] {
        pack_sparse24_bitmask(w, bool_row({1, 1, 1, 0, 1, 0, 1, 0}), name);
      },
      "columns 0..3");
  require_error<InternalError>(
      [&] {
        pack_sparse24_bitmask(w, bool_row({1, 0, 0, 0, 1, 0, 1, 0}), name);
      },
      "not 2:4");
  require_error<InternalError>([&] { pack_sparse24_bitmask(w, mask.repeat({2, 1}), name); }, name);
  require_error<InternalError>([&] { pack_sparse24_bitmask(w, mask.to(torch::kByte), name); },
                               name);
  require_error<InternalError>(
      [&] {
        pack_sparse24_bitmask(w, bool_row({1, 0, 0, 1, 1, 0, 1, 0}), name);
      },
      "[0, 1]");
  require_error<InternalError>([&] { pack_sparse24_bitmask(w.to(torch::kInt), mask, name); },
                               "floating-point");
  require_error<InternalError>(
      [&] {
        pack_sparse24_bitmask(row_of({0, 5, 0, 7, 1, NAN, 2, 0}), mask, name);
      },
      "[0, 5]");
}

TEST_CASE("sparse-24-bitmask reader refuses malformed tensors", "[unit]") {
  const std::string name = "model.layers.7.mlp.down_proj";
  const torch::Tensor w = row_of({1, 2, 0, 0, 0, 0, 3, 4, 0, 5, 0, 6}).repeat({2, 1});
  const Sparse24Packed p = pack_sparse24_bitmask(w, w.ne(0));
  const auto shape_of = [](int64_t rows, int64_t cols) {
    return torch::tensor(std::vector<int64_t>{rows, cols}).reshape({2, 1});
  };
  SECTION("shape") {
    require_error<UserError>(
        [&] {
          unpack_sparse24_bitmask(p.compressed, p.bitmask,
                                  torch::tensor(std::vector<int64_t>{2, 12, 1}), name);
        },
        "shape must be int64 [2, 1]");
    require_error<UserError>(
        [&] { unpack_sparse24_bitmask(p.compressed, p.bitmask, p.shape.to(torch::kFloat), name); },
        name);
    require_error<UserError>(
        [&] { unpack_sparse24_bitmask(p.compressed, p.bitmask, shape_of(2, 10), name); },
        "multiple of 4");
    require_error<UserError>(
        [&] { unpack_sparse24_bitmask(p.compressed, p.bitmask, shape_of(0, 12), name); }, name);
    require_error<UserError>(
        [&] { unpack_sparse24_bitmask(p.compressed, p.bitmask, shape_of(3, 12), name); },
        "compressed must be");
  }
  SECTION("compressed") {
    require_error<UserError>([&] { unpack_sparse24_bitmask(w, p.bitmask, p.shape, name); },
                             "compressed must be");
    require_error<UserError>(
        [&] { unpack_sparse24_bitmask(p.compressed.to(torch::kInt), p.bitmask, p.shape, name); },
        name);
  }
  SECTION("bitmask") {
    require_error<UserError>(
        [&] { unpack_sparse24_bitmask(p.compressed, p.bitmask.to(torch::kChar), p.shape, name); },
        "bitmask must be uint8 [2, 2]");
    require_error<UserError>(
        [&] { unpack_sparse24_bitmask(p.compressed, p.bitmask.narrow(1, 0, 1), p.shape, name); },
        name);
    torch::Tensor three = p.bitmask.clone();
    three[1][0] = 0xC7;  // row 1, columns 0..3 keep 0, 1, 2
    require_error<UserError>([&] { unpack_sparse24_bitmask(p.compressed, three, p.shape, name); },
                             "row 1 keeps 3 of columns 0..3");
    torch::Tensor one = p.bitmask.clone();
    one[0][1] = 0x02;  // row 0, columns 8..11 keep only 9
    require_error<UserError>([&] { unpack_sparse24_bitmask(p.compressed, one, p.shape, name); },
                             "row 0 keeps 1 of columns 8..11");
  }
}

// Packed checkpoint layouts: compressed-tensors pack-quantized, GPTQ v1, AutoAWQ GEMM. Each is
// checked against hand-computed words, against the loop reference packer, by a bit-exact round
// trip, and by an independent reader written here from docs/formats.md whose dequantized weight
// must equal dequantize() bit for bit.
#include "tests/catch_torch.h"
#include <random>
#include <vector>

#include "lib/common/errors.h"
#include "lib/quant/quant.h"
#include "lib/quant/reference.h"

using namespace presso;

namespace {

bool same(const QuantizedWeight& a, const QuantizedWeight& b) {
  return torch::equal(a.q, b.q) && torch::equal(a.scale, b.scale) &&
         torch::equal(a.zero_point, b.zero_point) && a.g_idx.has_value() == b.g_idx.has_value() &&
         (!a.g_idx || torch::equal(*a.g_idx, *b.g_idx));
}

// Bit `pos` of the bit string formed by words[0], words[1], ... (LSB first).
uint32_t read_field(const std::vector<uint32_t>& words, int64_t pos, int bits) {
  uint32_t value = 0;
  for (int j = 0; j < bits; ++j) {
    value |= ((words[(pos + j) / 32] >> ((pos + j) % 32)) & 1u) << j;
  }
  return value;
}

std::vector<uint32_t> column(const torch::Tensor& t, int64_t c) {
  std::vector<uint32_t> words;
  for (int64_t r = 0; r < t.size(0); ++r)
    words.push_back(static_cast<uint32_t>(t[r][c].item<int32_t>()));
  return words;
}

std::vector<uint32_t> row_of(const torch::Tensor& t, int64_t r) {
  std::vector<uint32_t> words;
  for (int64_t c = 0; c < t.size(1); ++c)
    words.push_back(static_cast<uint32_t>(t[r][c].item<int32_t>()));
  return words;
}

QuantizedWeight random_weight(int bits, int64_t out, int64_t in, int group_size, bool symmetric,
                              torch::ScalarType scale_dtype, bool avoid_qmin, int seed) {
  torch::manual_seed(seed);
  torch::Tensor w = torch::randn({out, in});
  w[0] = w[0].abs();  // a non-negative row: zero point q_min unless avoided
  GridOptions options;
  options.scale_dtype = scale_dtype;
  options.avoid_qmin_zero_point = avoid_qmin;
  return quantize_rtn(w, QuantScheme{bits, group_size, symmetric}, options);
}

}  // namespace

TEST_CASE("compressed-tensors packs a hand-computed 4-bit row", "[unit]") {
  // Codes −8..−1 are stored as 0..7, value i in nibble i.
  QuantizedWeight qw;
  qw.scheme = QuantScheme{4, -1, false};
  qw.q = torch::arange(-8, 0, torch::kInt8).reshape({1, 8});
  qw.scale = torch::ones({1, 1});
  qw.zero_point = torch::full({1, 1}, -3, torch::kInt32);
  const CompressedTensorsPacked packed = pack_compressed_tensors(qw, torch::kBFloat16);
  CHECK(static_cast<uint32_t>(packed.weight_packed.item<int32_t>()) == 0x76543210u);
  CHECK(packed.weight_zero_point->item<int32_t>() == 5);  // −3 + 8
  CHECK(packed.weight_scale.scalar_type() == torch::kBFloat16);
  CHECK(torch::equal(packed.weight_shape, torch::tensor({1, 8}, torch::kLong)));
  // Eight output rows of zero points −8..−1 pack down dim 0 into one word.
  QuantizedWeight column8 = qw;
  column8.q = torch::zeros({8, 8}, torch::kInt8);
  column8.scale = torch::ones({8, 1});
  column8.zero_point = torch::arange(-8, 0, torch::kInt32).reshape({8, 1});
  const auto zp = pack_compressed_tensors(column8, torch::kFloat32).weight_zero_point;
  CHECK(zp->sizes() == torch::IntArrayRef({1, 1}));
  CHECK(static_cast<uint32_t>(zp->item<int32_t>()) == 0x76543210u);
}

TEST_CASE("compressed-tensors 3-bit rows pack densely with straddling values", "[unit]") {
  QuantizedWeight qw;
  qw.scheme = QuantScheme{3, -1, true};
  qw.q = torch::full({1, 11}, -4, torch::kInt8);  // stored 0
  qw.q[0][10] = 3;                                // stored 7 over bits 30..32
  qw.scale = torch::ones({1, 1});
  qw.zero_point = torch::zeros({1, 1}, torch::kInt32);
  const CompressedTensorsPacked packed = pack_compressed_tensors(qw, torch::kFloat32);
  REQUIRE(packed.weight_packed.sizes() == torch::IntArrayRef({1, 2}));  // ceil(33/32)
  CHECK(static_cast<uint32_t>(packed.weight_packed[0][0].item<int32_t>()) == 0xC0000000u);
  CHECK(packed.weight_packed[0][1].item<int32_t>() == 1);
  CHECK_FALSE(packed.weight_zero_point.has_value());
}

TEST_CASE("compressed-tensors packing matches the reference and round-trips", "[unit]") {
  std::mt19937 rng(21);
  for (int trial = 0; trial < 28; ++trial) {
    const int bits = 2 + trial % 7;
    const int gs = std::vector<int>{-1, 8, 16}[rng() % 3];
    const int64_t in = gs == -1 ? 8 + rng() % 40 : gs * (1 + rng() % 3);
    const int64_t out = 1 + rng() % 40;
    const bool symmetric = trial % 2 == 0;
    QuantizedWeight qw =
        random_weight(bits, out, in, gs, symmetric, torch::kBFloat16, false, 400 + trial);
    if (trial % 5 == 0) qw.g_idx = torch::randint(qw.scale.size(1), {in}, torch::kInt32);
    INFO("trial " << trial << " bits " << bits << " [" << out << ", " << in << "] gs " << gs);
    const CompressedTensorsPacked fast = pack_compressed_tensors(qw, torch::kBFloat16);
    const CompressedTensorsPacked ref = pack_compressed_tensors_ref(qw, torch::kBFloat16);
    CHECK(torch::equal(fast.weight_packed, ref.weight_packed));
    CHECK(fast.weight_zero_point.has_value() == !symmetric);
    if (!symmetric) {
      CHECK(fast.weight_zero_point->sizes() ==
            torch::IntArrayRef({(out * bits + 31) / 32, qw.scale.size(1)}));
      CHECK(torch::equal(*fast.weight_zero_point, *ref.weight_zero_point));
    }
    const QuantizedWeight back = unpack_compressed_tensors(fast, qw.scheme);
    if (back.g_idx.has_value() != qw.g_idx.has_value()) {  // a random g_idx may be the default
      CHECK(torch::equal(column_groups(back), column_groups(qw)));
      CHECK(torch::equal(back.q, qw.q));
    } else {
      CHECK(same(back, qw));
    }
    // Independent reader: field c of row r at bit c·b, minus 2^(b−1).
    const torch::Tensor dq = dequantize(qw);
    const torch::Tensor groups = column_groups(qw);
    for (int64_t r = 0; r < out; r += 3) {
      const std::vector<uint32_t> words = row_of(fast.weight_packed, r);
      for (int64_t c = 0; c < in; ++c) {
        const int64_t g = groups[c].item<int64_t>();
        int64_t zp = 0;
        if (!symmetric) {
          zp =
              static_cast<int64_t>(read_field(column(*fast.weight_zero_point, g), r * bits, bits)) -
              (1 << (bits - 1));
        }
        const float q = static_cast<float>(read_field(words, c * bits, bits)) - (1 << (bits - 1));
        const float value = (q - zp) * fast.weight_scale[r][g].item<float>();
        REQUIRE(value == dq[r][c].item<float>());
      }
    }
  }
}

TEST_CASE("GPTQ v1 packs hand-computed symmetric 4-bit words", "[unit]") {
  // q[r][c] = c − 8 → stored u = c, so each output column's word is 0x76543210 and the
  // symmetric zero point 8 is stored as 7 in every nibble.
  QuantizedWeight qw;
  qw.scheme = QuantScheme{4, -1, true};
  qw.q = (torch::arange(8, torch::kInt8) - 8).repeat({8, 1});
  qw.scale = torch::full({8, 1}, 0.5f);
  qw.zero_point = torch::zeros({8, 1}, torch::kInt32);
  const GptqPacked packed = pack_gptq_v1(qw);
  REQUIRE(packed.qweight.sizes() == torch::IntArrayRef({1, 8}));
  CHECK(torch::equal(packed.qweight, torch::full({1, 8}, 0x76543210, torch::kInt32)));
  REQUIRE(packed.qzeros.sizes() == torch::IntArrayRef({1, 1}));
  CHECK(packed.qzeros.item<int32_t>() == 0x77777777);
  CHECK(packed.scales.scalar_type() == torch::kFloat16);
  CHECK(torch::equal(packed.g_idx, torch::zeros({8}, torch::kInt32)));
}

TEST_CASE("GPTQ v1 3-bit words follow AutoGPTQ's 10+1+10+1+10 pattern", "[unit]") {
  // In AutoGPTQ's pack, value 10 of a 32-value block puts bits 0..1 at bit 30 of word 0 and bit 2
  // at bit 0 of word 1; value 21 puts bit 0 at bit 31 of word 1, bits 1..2 at bits 0..1 of word 2.
  QuantizedWeight qw;
  qw.scheme = QuantScheme{3, -1, true};
  qw.q = torch::full({32, 32}, -4, torch::kInt8);  // stored 0
  qw.q.select(1, 10).fill_(3);                     // stored 0b111
  qw.q.select(1, 21).fill_(-2);                    // stored 0b010
  qw.scale = torch::ones({32, 1});
  qw.zero_point = torch::zeros({32, 1}, torch::kInt32);
  const GptqPacked packed = pack_gptq_v1(qw);
  REQUIRE(packed.qweight.sizes() == torch::IntArrayRef({3, 32}));
  CHECK(static_cast<uint32_t>(packed.qweight[0][5].item<int32_t>()) == 0xC0000000u);
  CHECK(packed.qweight[1][5].item<int32_t>() == 1);  // bit 2 of value 10; bit 0 of 21 is 0
  CHECK(packed.qweight[2][5].item<int32_t>() == 1);  // bits 1..2 of value 21 = 0b01
  // Symmetric zero point 4 stored as 3 = 0b011 in all 32 fields of 3 words.
  REQUIRE(packed.qzeros.sizes() == torch::IntArrayRef({1, 3}));
  CHECK(static_cast<uint32_t>(packed.qzeros[0][0].item<int32_t>()) == 0xDB6DB6DBu);
  CHECK(static_cast<uint32_t>(packed.qzeros[0][1].item<int32_t>()) == 0xB6DB6DB6u);
  CHECK(static_cast<uint32_t>(packed.qzeros[0][2].item<int32_t>()) == 0x6DB6DB6Du);
}

TEST_CASE("GPTQ v1 refuses a zero point of 0 unless the grid avoided it", "[unit]") {
  const QuantizedWeight bad = random_weight(4, 32, 64, 32, false, torch::kFloat16, false, 1);
  REQUIRE(((bad.zero_point + 8) == 0).any().item<bool>());
  try {
    pack_gptq_v1(bad, "model.layers.1.mlp.down_proj.weight");
    FAIL("expected UserError");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK(message.find("down_proj") != std::string::npos);
    CHECK(message.find("avoid_qmin_zero_point") != std::string::npos);
  }
  const QuantizedWeight good = random_weight(4, 32, 64, 32, false, torch::kFloat16, true, 1);
  CHECK_NOTHROW(pack_gptq_v1(good));
  // Scales not rounded to fp16 are refused rather than silently changed.
  CHECK_THROWS_AS(pack_gptq_v1(random_weight(4, 32, 64, 32, true, torch::kFloat32, false, 2)),
                  InternalError);
  CHECK_THROWS_AS(pack_gptq_v1(random_weight(5, 32, 64, 32, true, torch::kFloat16, false, 3)),
                  UserError);
  CHECK_THROWS_AS(pack_gptq_v1(random_weight(4, 30, 64, 32, true, torch::kFloat16, false, 4)),
                  UserError);
}

TEST_CASE("GPTQ v1 packing matches the reference, round-trips and reads back independently",
          "[unit]") {
  std::mt19937 rng(31);
  for (int trial = 0; trial < 16; ++trial) {
    const int bits = std::vector<int>{2, 3, 4, 8}[trial % 4];
    const int gs = std::vector<int>{-1, 32, 64}[rng() % 3];
    const int64_t in = gs == -1 ? 96 : gs * (1 + rng() % 3);
    const int64_t out = 32 * (1 + rng() % 3);
    const bool symmetric = trial % 3 == 0;
    QuantizedWeight qw =
        random_weight(bits, out, in, gs, symmetric, torch::kFloat16, true, 500 + trial);
    if (trial % 2 == 1) qw.g_idx = torch::randint(qw.scale.size(1), {in}, torch::kInt32);
    INFO("trial " << trial << " bits " << bits << " [" << out << ", " << in << "] gs " << gs);
    const GptqPacked fast = pack_gptq_v1(qw);
    const GptqPacked ref = pack_gptq_v1_ref(qw);
    CHECK(torch::equal(fast.qweight, ref.qweight));
    CHECK(torch::equal(fast.qzeros, ref.qzeros));
    CHECK(torch::equal(fast.scales, ref.scales));
    CHECK(torch::equal(fast.g_idx, ref.g_idx));
    const QuantizedWeight back = unpack_gptq_v1(fast, qw.scheme);
    CHECK(torch::equal(back.q, qw.q));
    CHECK(torch::equal(back.zero_point, qw.zero_point));
    CHECK(torch::equal(back.scale, qw.scale));
    CHECK(torch::equal(column_groups(back), column_groups(qw)));
    // Independent reader, as a v1 loader does: u from bits c·b of output column r of qweight,
    // z = field r·b of qzeros row g plus 1, w = (u − z)·scales[g][r] with g = g_idx[c].
    const torch::Tensor dq = dequantize(qw);
    for (int64_t r = 0; r < out; r += 5) {
      const std::vector<uint32_t> words = column(fast.qweight, r);
      for (int64_t c = 0; c < in; ++c) {
        const int64_t g = fast.g_idx[c].item<int32_t>();
        const float z = static_cast<float>(read_field(row_of(fast.qzeros, g), r * bits, bits) + 1);
        const float u = static_cast<float>(read_field(words, c * bits, bits));
        const float value = (u - z) * static_cast<float>(fast.scales[g][r].item<at::Half>());
        REQUIRE(value == dq[r][c].item<float>());
      }
    }
  }
}

TEST_CASE("GPTQ v1 reader follows vLLM for a wrapped zero point", "[unit]") {
  // A field of all ones (z − 1 = −1 masked) reads back as 2^b: signed zero point 2^(b−1).
  GptqPacked packed;
  packed.qweight = torch::zeros({1, 8}, torch::kInt32);
  packed.qzeros = torch::full({1, 1}, static_cast<int32_t>(0xFFFFFFFFu), torch::kInt32);
  packed.scales = torch::ones({1, 8}, torch::kFloat16);
  packed.g_idx = torch::zeros({8}, torch::kInt32);
  const QuantizedWeight back = unpack_gptq_v1(packed, QuantScheme{4, -1, false});
  CHECK(torch::equal(back.zero_point, torch::full({8, 1}, 8, torch::kInt32)));
  CHECK(dequantize(back)[0][0].item<float>() == -16.0f);  // (0 − 16)·1
}

TEST_CASE("AWQ GEMM packs a hand-computed interleaved word", "[unit]") {
  // Column c holds u = c; nibble i holds column [0, 2, 4, 6, 1, 3, 5, 7][i].
  QuantizedWeight qw;
  qw.scheme = QuantScheme{4, -1, true};
  qw.q = (torch::arange(8, torch::kInt8) - 8).reshape({8, 1});  // [out 8, in 1]
  qw.scale = torch::full({8, 1}, 0.25f);
  qw.zero_point = torch::zeros({8, 1}, torch::kInt32);
  const AwqPacked packed = pack_awq_gemm(qw);
  REQUIRE(packed.qweight.sizes() == torch::IntArrayRef({1, 1}));
  CHECK(static_cast<uint32_t>(packed.qweight.item<int32_t>()) == 0x75316420u);
  CHECK(static_cast<uint32_t>(packed.qzeros.item<int32_t>()) == 0x88888888u);  // z = 8, no −1
  CHECK(packed.scales.sizes() == torch::IntArrayRef({1, 8}));
}

TEST_CASE("AWQ GEMM packing matches the reference, round-trips and reads back independently",
          "[unit]") {
  std::mt19937 rng(41);
  for (int trial = 0; trial < 12; ++trial) {
    const int gs = std::vector<int>{-1, 16, 32}[rng() % 3];
    const int64_t in = gs == -1 ? 40 : gs * (1 + rng() % 3);
    const int64_t out = 8 * (1 + rng() % 6);
    const bool symmetric = trial % 3 == 0;
    const QuantizedWeight qw =
        random_weight(4, out, in, gs, symmetric, torch::kFloat16, false, 600 + trial);
    INFO("trial " << trial << " [" << out << ", " << in << "] gs " << gs);
    const AwqPacked fast = pack_awq_gemm(qw);
    const AwqPacked ref = pack_awq_gemm_ref(qw);
    CHECK(torch::equal(fast.qweight, ref.qweight));
    CHECK(torch::equal(fast.qzeros, ref.qzeros));
    CHECK(torch::equal(fast.scales, ref.scales));
    CHECK(same(unpack_awq_gemm(fast, qw.scheme), qw));
    // Independent reader: column c is nibble [0, 4, 1, 5, 2, 6, 3, 7][c % 8] of word c / 8.
    const int nibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    const int64_t gsize = in / qw.scale.size(1);
    const torch::Tensor dq = dequantize(qw);
    for (int64_t i = 0; i < in; ++i) {
      const int64_t g = i / gsize;
      for (int64_t c = 0; c < out; ++c) {
        const auto field = [&](const torch::Tensor& words, int64_t r) {
          const uint32_t word = static_cast<uint32_t>(words[r][c / 8].item<int32_t>());
          return static_cast<float>((word >> (4 * nibble[c % 8])) & 0xFu);
        };
        const float value = (field(fast.qweight, i) - field(fast.qzeros, g)) *
                            static_cast<float>(fast.scales[g][c].item<at::Half>());
        REQUIRE(value == dq[c][i].item<float>());
      }
    }
  }
  CHECK_THROWS_AS(pack_awq_gemm(random_weight(3, 8, 32, 16, true, torch::kFloat16, false, 1)),
                  UserError);
  CHECK_THROWS_AS(pack_awq_gemm(random_weight(4, 12, 32, 16, true, torch::kFloat16, false, 1)),
                  UserError);
}

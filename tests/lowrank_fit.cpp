#include "tests/catch_torch.h"
// Low-rank error compensation (lib/lowrank): SVD and EoRA fits against slow fp64 references —
// Eckart–Young tails, EoRA's optimum through a Cholesky factor of H, the paper's factor formula
// written out with loops — and their properties over random shapes, seeds and ranks.
#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "lib/common/errors.h"
#include "lib/lowrank/lowrank.h"
#include "lib/quant/quantize.h"

using namespace presso;

namespace {

const auto kF64 = torch::kFloat64;

double nmse(const torch::Tensor& approx, const torch::Tensor& exact) {
  return ((approx.to(kF64) - exact.to(kF64)).pow(2).sum() /
          exact.to(kF64).pow(2).sum().clamp_min(1e-300))
      .item<double>();
}

torch::Tensor product(const LowRankFit& fit) { return fit.b.to(kF64).mm(fit.a.to(kF64)); }

// A random layer and its 3-bit RTN compression: {W, W_compressed}, [out, in] fp32.
std::pair<torch::Tensor, torch::Tensor> random_layer(int64_t out, int64_t in) {
  const torch::Tensor w = torch::randn({out, in});
  const torch::Tensor wq = dequantize(quantize_rtn(w, QuantScheme{3, -1, true}));
  return {w, wq};
}

// Correlated inputs X = Z·M [n, in]: M is rank `dominant` with large weight plus small noise, so
// a few directions dominate XᵀX, as in a transformer's activations.
torch::Tensor correlated_inputs(int64_t n, int64_t in, int64_t dominant, double noise) {
  const torch::Tensor m = 3.0 * torch::randn({in, dominant}).mm(torch::randn({dominant, in})) +
                          noise * torch::randn({in, in});
  return torch::randn({n, in}).mm(m);
}

// XᵀX [in, in] in fp64, as the statistics are accumulated.
torch::Tensor gram(const torch::Tensor& x) { return x.to(kF64).t().mm(x.to(kF64)); }

// Whether every value of `row` is k·s for one step s and integers k in [−2^(b−1), 2^(b−1)]: the
// largest magnitude sits on some code c of that range, so try each.
bool on_symmetric_grid(const torch::Tensor& row, int bits) {
  const torch::Tensor values = row.to(kF64);
  const double largest = values.abs().max().item<double>();
  if (largest == 0.0) return true;
  for (int64_t c = 1; c <= (int64_t{1} << (bits - 1)); ++c) {
    const torch::Tensor codes = values * (static_cast<double>(c) / largest);
    if ((codes - codes.round()).abs().max().item<double>() < 1e-4) return true;
  }
  return false;
}

// Slow reference: Σ_n ‖(ΔW − BA)·x_n‖² by explicit loops over samples, rows and columns, fp64.
double weighted_error_ref(const torch::Tensor& delta, const LowRankFit& fit,
                          const torch::Tensor& x) {
  const torch::Tensor e = (delta.to(kF64) - product(fit)).contiguous();
  const torch::Tensor xs = x.to(kF64).contiguous();
  const int64_t out = e.size(0), in = e.size(1), n = xs.size(0);
  const double* ep = e.data_ptr<double>();
  const double* xp = xs.data_ptr<double>();
  double total = 0.0;
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t i = 0; i < out; ++i) {
      double y = 0.0;
      for (int64_t j = 0; j < in; ++j) y += ep[i * in + j] * xp[s * in + j];
      total += y * y;
    }
  }
  return total;
}

// Eckart–Young: the smallest ‖ΔW − C‖_F² over rank-r C is the tail Σ_{i>r} σ_i(ΔW)².
double svd_optimum_ref(const torch::Tensor& delta, int64_t r) {
  const torch::Tensor s = torch::linalg_svdvals(delta.to(kF64));
  return s.narrow(0, r, s.size(0) - r).square().sum().item<double>();
}

// The smallest ‖(ΔW − C)·Xᵀ‖_F² over rank-r C, for positive definite H = LLᵀ: ‖(ΔW − C)·L‖_F² is
// the unweighted problem for ΔW·L, so the optimum is the tail of σ(ΔW·L)².
double eora_optimum_ref(const torch::Tensor& delta, const torch::Tensor& xtx, int64_t r) {
  const torch::Tensor lower = torch::linalg_cholesky(xtx.to(kF64));
  const torch::Tensor s = torch::linalg_svdvals(delta.to(kF64).mm(lower));
  return s.narrow(0, r, s.size(0) - r).square().sum().item<double>();
}

// The paper's factors, written out: H = QΛQᵀ, ΔW' = ΔW·Q·√Λ = UΣVᵀ, B = U_rΣ_r,
// A = V_rᵀ·diag(1/√Λ)·Qᵀ, the last product by explicit loops. H must be positive definite.
torch::Tensor eora_paper_product_ref(const torch::Tensor& delta, const torch::Tensor& xtx,
                                     int64_t r) {
  torch::Tensor lambda, q;
  std::tie(lambda, q) = torch::linalg_eigh(xtx.to(kF64));
  const torch::Tensor root = lambda.sqrt();
  torch::Tensor u, s, vh;
  std::tie(u, s, vh) = torch::linalg_svd(delta.to(kF64).mm(q * root), false);
  const int64_t in = delta.size(1);
  const torch::Tensor b = u.narrow(1, 0, r) * s.narrow(0, 0, r);
  torch::Tensor a = torch::zeros({r, in}, kF64);
  const torch::Tensor v = vh.contiguous(), qc = q.contiguous(), rc = root.contiguous();
  const double* vp = v.data_ptr<double>();
  const double* qp = qc.data_ptr<double>();
  const double* rp = rc.data_ptr<double>();
  double* ap = a.data_ptr<double>();
  for (int64_t k = 0; k < r; ++k) {
    for (int64_t j = 0; j < in; ++j) {
      double sum = 0.0;
      for (int64_t m = 0; m < in; ++m) sum += vp[k * in + m] / rp[m] * qp[j * in + m];
      ap[k * in + j] = sum;
    }
  }
  return b.mm(a);
}

LowRankOptions fixed(LowRankMethod method, int64_t rank, int bits = 0) {
  LowRankOptions options;
  options.method = method;
  options.rank = rank;
  options.adapter_bits = bits;
  return options;
}

}  // namespace

TEST_CASE("at full rank the compensated weight equals the original", "[unit]") {
  const std::vector<std::pair<int64_t, int64_t>> shapes{{24, 40}, {40, 24}, {32, 32}, {7, 13}};
  for (int trial = 0; trial < 8; ++trial) {
    torch::manual_seed(trial);
    const auto [out, in] = shapes[trial % shapes.size()];
    const auto [w, wq] = random_layer(out, in);
    const torch::Tensor delta = w - wq;
    // Full-rank H (many samples) and rank-deficient H (fewer samples than inputs).
    for (const int64_t samples : {4 * in, in / 3}) {
      const torch::Tensor xtx = gram(correlated_inputs(samples, in, 3, 0.05));
      for (const auto method : {LowRankMethod::kSvd, LowRankMethod::kEora}) {
        const LowRankFit fit = fit_lowrank(delta, xtx, fixed(method, 1000), "w");
        INFO("trial " << trial << " shape [" << out << ", " << in << "] samples " << samples
                      << " method " << static_cast<int>(method));
        REQUIRE(fit.rank == std::min(out, in));
        CHECK(fit.a.sizes() == torch::IntArrayRef({fit.rank, in}));
        CHECK(fit.b.sizes() == torch::IntArrayRef({out, fit.rank}));
        CHECK(fit.a.scalar_type() == torch::kFloat32);
        const torch::Tensor restored = wq.to(kF64) + product(fit);
        const double relative = ((restored - w.to(kF64)).norm() / w.to(kF64).norm()).item<double>();
        CHECK(relative < 1e-4);
        CHECK(fit.captured == Approx(1.0).epsilon(1e-9));
      }
    }
  }
}

TEST_CASE("svd fit reaches the Eckart-Young optimum", "[unit]") {
  for (int trial = 0; trial < 6; ++trial) {
    torch::manual_seed(100 + trial);
    const int64_t out = 8 + 7 * trial, in = 40 - 3 * trial;
    const auto [w, wq] = random_layer(out, in);
    const torch::Tensor delta = w - wq;
    for (const int64_t r : {1, 3, 8}) {
      const LowRankFit fit = fit_lowrank(delta, std::nullopt, fixed(LowRankMethod::kSvd, r));
      const double error = (delta.to(kF64) - product(fit)).square().sum().item<double>();
      const double optimum = svd_optimum_ref(delta, r);
      INFO("trial " << trial << " rank " << r << " error " << error << " optimum " << optimum);
      const double total = delta.to(kF64).square().sum().item<double>();
      CHECK(error == Approx(optimum).epsilon(1e-5).margin(1e-10 * total));
      CHECK(fit.captured == Approx(1.0 - optimum / total).epsilon(1e-9));
    }
  }
}

TEST_CASE("eora matches the paper's factors and the weighted optimum", "[unit]") {
  for (int trial = 0; trial < 6; ++trial) {
    torch::manual_seed(200 + trial);
    const int64_t out = 12 + 5 * trial, in = 36 - 2 * trial;
    const auto [w, wq] = random_layer(out, in);
    const torch::Tensor delta = w - wq;
    // Noise 1: H stays well conditioned, so the eigenvalue floor never bites and the paper's
    // unclamped formula is the exact reference.
    const torch::Tensor x = correlated_inputs(3 * in, in, 4, 1.0);
    const torch::Tensor xtx = gram(x);
    for (const int64_t r : {1, 4, 10}) {
      const LowRankFit fit = fit_lowrank(delta, xtx, fixed(LowRankMethod::kEora, r), "w");
      const double error = weighted_error(delta, fit, xtx);
      INFO("trial " << trial << " rank " << r);
      CHECK(error == Approx(weighted_error_ref(delta, fit, x)).epsilon(1e-8));
      CHECK(error == Approx(eora_optimum_ref(delta, xtx, r)).epsilon(1e-6));
      const double product_nmse = nmse(product(fit), eora_paper_product_ref(delta, xtx, r));
      INFO("NMSE against the paper's factors " << product_nmse);
      CHECK(product_nmse < 1e-10);
    }
  }
}

TEST_CASE("eora's weighted error is never above svd's at the same rank", "[unit]") {
  for (int trial = 0; trial < 10; ++trial) {
    torch::manual_seed(300 + trial);
    const int64_t out = 16 + 6 * trial, in = 48 - 2 * trial;
    const auto [w, wq] = random_layer(out, in);
    const torch::Tensor delta = w - wq;
    // Odd trials: fewer samples than inputs, so H is singular and the clamp is exercised.
    const int64_t samples = trial % 2 ? in / 2 : 4 * in;
    const torch::Tensor xtx = gram(correlated_inputs(samples, in, 2 + trial % 3, 0.1));
    const double uncompensated =
        weighted_error(delta, {torch::zeros({1, in}), torch::zeros({out, 1}), 1, 0.0}, xtx);
    for (const int64_t r : {1, 2, 4, 8, 16}) {
      const double eora =
          weighted_error(delta, fit_lowrank(delta, xtx, fixed(LowRankMethod::kEora, r)), xtx);
      const double svd =
          weighted_error(delta, fit_lowrank(delta, xtx, fixed(LowRankMethod::kSvd, r)), xtx);
      INFO("trial " << trial << " rank " << r << " eora " << eora << " svd " << svd);
      CHECK(eora <= svd * (1.0 + 1e-9) + 1e-12 * uncompensated);
      CHECK(eora < uncompensated);
    }
  }
}

TEST_CASE("energy picks the smallest rank holding the share", "[unit]") {
  torch::manual_seed(400);
  // Singular values² {40, 30, 20, 5, 3, 2}: total 100, so the shares are easy to read.
  const std::vector<double> sigma2{40, 30, 20, 5, 3, 2};
  torch::Tensor u, v;
  std::tie(u, std::ignore) = torch::linalg_qr(torch::randn({6, 6}, kF64));
  std::tie(v, std::ignore) = torch::linalg_qr(torch::randn({9, 6}, kF64));
  const torch::Tensor delta =
      (u * torch::tensor(sigma2, kF64).sqrt()).mm(v.t()).to(torch::kFloat32);  // [6, 9]
  const torch::Tensor identity = torch::eye(9, kF64);
  const std::vector<std::tuple<double, int64_t, int64_t, double>> cases{
      // energy, max_rank, expected rank, expected captured
      {0.40, 0, 1, 0.40}, {0.41, 0, 2, 0.70}, {0.70, 0, 2, 0.70},
      {0.90, 0, 3, 0.90}, {0.95, 0, 4, 0.95}, {0.96, 0, 5, 0.98},
      {1.00, 0, 6, 1.00}, {0.99, 3, 3, 0.90}, {0.01, 0, 1, 0.40}};
  for (const auto method : {LowRankMethod::kSvd, LowRankMethod::kEora}) {
    for (const auto& [energy, max_rank, rank, captured] : cases) {
      LowRankOptions options;
      options.method = method;
      options.energy = energy;
      options.max_rank = max_rank;
      // H = I: EoRA truncates in the same space as SVD.
      const LowRankFit fit = fit_lowrank(delta, identity, options);
      INFO("method " << static_cast<int>(method) << " energy " << energy << " max_rank "
                     << max_rank);
      CHECK(fit.rank == rank);
      CHECK(fit.a.size(0) == rank);
      CHECK(fit.captured == Approx(captured).epsilon(1e-5));
    }
  }
  // EoRA measures energy in the weighted space: H = diag(c) with c large on the last right
  // singular direction turns it into the dominant one.
  const torch::Tensor last = v.narrow(1, 5, 1);  // [9, 1]
  const torch::Tensor weighted = identity + 1e4 * last.mm(last.t());
  LowRankOptions options;
  options.energy = 0.9;
  const LowRankFit fit = fit_lowrank(delta, weighted, options);
  CHECK(fit.rank == 1);
}

TEST_CASE("adapter bits put the factors on a grid and still reduce the error", "[unit]") {
  for (int trial = 0; trial < 4; ++trial) {
    torch::manual_seed(500 + trial);
    const int64_t out = 32 + 8 * trial, in = 48;
    const auto [w, wq] = random_layer(out, in);
    const torch::Tensor delta = w - wq;
    const torch::Tensor xtx = gram(correlated_inputs(4 * in, in, 3, 0.1));
    const double uncompensated =
        weighted_error(delta, {torch::zeros({1, in}), torch::zeros({out, 1}), 1, 0.0}, xtx);
    for (const auto method : {LowRankMethod::kSvd, LowRankMethod::kEora}) {
      const double exact = weighted_error(delta, fit_lowrank(delta, xtx, fixed(method, 8)), xtx);
      for (const int bits : {2, 3, 4, 8}) {
        const LowRankFit fit = fit_lowrank(delta, xtx, fixed(method, 8, bits), "w");
        INFO("trial " << trial << " method " << static_cast<int>(method) << " bits " << bits);
        for (const torch::Tensor& factor : {fit.a, fit.b}) {
          CHECK(factor.scalar_type() == torch::kFloat32);
          for (int64_t row = 0; row < factor.size(0); ++row) {
            const torch::Tensor values = std::get<0>(torch::_unique(factor[row]));
            CHECK(values.numel() <= (int64_t{1} << bits));
          }
          for (int64_t row = 0; row < factor.size(0); ++row) {
            CHECK(on_symmetric_grid(factor[row], bits));
          }
        }
        const double error = weighted_error(delta, fit, xtx);
        CHECK(error < uncompensated);
        // At 8 bits the rounding costs little next to what the factors remove.
        if (bits == 8) CHECK(error - exact < 0.01 * uncompensated);
      }
    }
  }
}

TEST_CASE("a zero delta gives a zero fit", "[unit]") {
  const torch::Tensor delta = torch::zeros({12, 20});
  const torch::Tensor xtx = gram(torch::randn({40, 20}));
  for (const auto method : {LowRankMethod::kSvd, LowRankMethod::kEora}) {
    const LowRankFit fit = fit_lowrank(delta, xtx, fixed(method, 16, 4));
    CHECK(fit.rank == 12);
    CHECK(fit.a.abs().max().item<float>() == 0.0f);
    CHECK(fit.b.abs().max().item<float>() == 0.0f);
    CHECK(fit.captured == 1.0);
    LowRankOptions options;
    options.method = method;
    options.energy = 0.9;
    CHECK(fit_lowrank(delta, xtx, options).rank == 1);
  }
}

TEST_CASE("eora with an all-zero XtX falls back to svd", "[unit]") {
  torch::manual_seed(600);
  const auto [w, wq] = random_layer(16, 24);
  const torch::Tensor delta = w - wq;
  const LowRankFit eora =
      fit_lowrank(delta, torch::zeros({24, 24}), fixed(LowRankMethod::kEora, 5));
  const LowRankFit svd = fit_lowrank(delta, std::nullopt, fixed(LowRankMethod::kSvd, 5));
  CHECK(nmse(product(eora), product(svd)) < 1e-12);
  CHECK(eora.captured == Approx(svd.captured));
}

TEST_CASE("bad shapes and options throw with the tensor name", "[unit]") {
  const torch::Tensor delta = torch::randn({8, 12});
  const torch::Tensor xtx = torch::eye(12);
  const std::string name = "model.layers.0.mlp.up_proj.weight";
  const auto eora = fixed(LowRankMethod::kEora, 4);
  using Catch::Contains;
  CHECK_THROWS_AS(fit_lowrank(torch::randn({12}), xtx, eora, name), UserError);
  CHECK_THROWS_WITH(fit_lowrank(torch::randn({12}), xtx, eora, name), Contains(name));
  CHECK_THROWS_WITH(fit_lowrank(delta, torch::eye(8), eora, name),
                    Contains(name) && Contains("[12, 12]"));
  CHECK_THROWS_WITH(fit_lowrank(delta, std::nullopt, eora, name), Contains(name));
  CHECK_NOTHROW(fit_lowrank(delta, std::nullopt, fixed(LowRankMethod::kSvd, 4), name));
  torch::Tensor nan_delta = delta.clone();
  nan_delta[2][3] = std::nan("");
  CHECK_THROWS_WITH(fit_lowrank(nan_delta, xtx, eora, name),
                    Contains(name) && Contains("non-finite"));
  torch::Tensor inf_xtx = xtx.clone();
  inf_xtx[0][0] = INFINITY;
  CHECK_THROWS_AS(fit_lowrank(delta, inf_xtx, eora, name), UserError);
  CHECK_THROWS_AS(fit_lowrank(delta, -xtx, eora, name), UserError);
  // Every bad option in one message.
  LowRankOptions bad;
  bad.energy = 1.5;
  bad.max_rank = -1;
  bad.adapter_bits = 9;
  CHECK_THROWS_WITH(fit_lowrank(delta, xtx, bad, name), Contains(name) && Contains("energy") &&
                                                            Contains("max_rank") &&
                                                            Contains("adapter_bits"));
  CHECK_THROWS_AS(fit_lowrank(delta, xtx, fixed(LowRankMethod::kSvd, 0), name), UserError);
  const LowRankFit fit = fit_lowrank(delta, xtx, eora, name);
  CHECK_THROWS_AS(weighted_error(delta.t(), fit, xtx), UserError);
  CHECK_THROWS_AS(weighted_error(delta, fit, torch::eye(8)), UserError);
}

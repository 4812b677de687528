#include "lib/lowrank/lowrank.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "lib/common/errors.h"
#include "lib/quant/quantize.h"
#include "lib/quant/scheme.h"
#include "lib/quant/tensor_checks.h"

namespace presso {
namespace {

// Relative floor of H's eigenvalues; see the header comment.
constexpr double kEigenvalueFloor = 1e-8;

std::string subject(const std::string& tensor_name) {
  return tensor_name.empty() ? std::string("low-rank fit") : "tensor '" + tensor_name + "'";
}

[[noreturn]] void fail_problems(const std::string& tensor_name,
                                const std::vector<std::string>& problems) {
  std::string message = subject(tensor_name) + ": ";
  for (size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  throw UserError(message);
}

void validate(const torch::Tensor& delta, const std::optional<torch::Tensor>& xtx,
              const LowRankOptions& options, const std::string& tensor_name) {
  std::vector<std::string> problems;
  if (options.energy == 0.0) {
    if (options.rank < 1) {
      problems.push_back(fmt::format("rank {} is invalid (valid: >= 1)", options.rank));
    }
  } else if (!(options.energy > 0.0 && options.energy <= 1.0)) {
    problems.push_back(fmt::format(
        "energy {} is out of range (valid: (0, 1], or 0 for a fixed rank)", options.energy));
  }
  if (options.max_rank < 0) {
    problems.push_back(
        fmt::format("max_rank {} is invalid (valid: >= 1, or 0 for no cap)", options.max_rank));
  }
  if (options.adapter_bits != 0 && (options.adapter_bits < 2 || options.adapter_bits > 8)) {
    problems.push_back(fmt::format("adapter_bits {} is out of range (valid: 0 for fp32, or 2..8)",
                                   options.adapter_bits));
  }
  const bool delta_ok =
      delta.defined() && delta.dim() == 2 && delta.is_floating_point() && delta.numel() > 0;
  if (!delta_ok) {
    problems.push_back(fmt::format(
        "the compression error must be a non-empty floating-point matrix [out, in], got {}",
        delta.defined() ? shape_string(delta) : std::string("no tensor")));
  } else if (!all_finite(delta)) {
    problems.push_back("the compression error has non-finite values");
  }
  if (options.method == LowRankMethod::kEora) {
    if (!xtx || !xtx->defined()) {
      problems.push_back("EoRA needs the input statistics XᵀX [in, in], none given");
    } else if (delta_ok) {
      const int64_t in = delta.size(1);
      if (xtx->dim() != 2 || xtx->size(0) != in || xtx->size(1) != in ||
          !xtx->is_floating_point()) {
        problems.push_back(fmt::format("XᵀX must be a floating-point [{}, {}] matrix, got {}", in,
                                       in, shape_string(*xtx)));
      } else if (!all_finite(*xtx)) {
        problems.push_back("XᵀX has non-finite values");
      }
    }
  }
  if (!problems.empty()) fail_problems(tensor_name, problems);
}

struct RankChoice {
  int64_t rank;
  double captured;
};

// sigma2: σ² [k] fp64 in descending order, k = min(out, in).
RankChoice choose_rank(const torch::Tensor& sigma2, const LowRankOptions& options) {
  const torch::Tensor cumulative = sigma2.to(torch::kCPU).cumsum(0).contiguous();
  const double* cum = cumulative.data_ptr<double>();
  const int64_t full = cumulative.size(0);
  const double total = cum[full - 1];
  int64_t rank = std::min(options.rank, full);
  if (options.energy > 0.0) {
    const int64_t cap = options.max_rank > 0 ? std::min(options.max_rank, full) : full;
    // A share within 1e-6 of the target meets it: σ² of an fp32 ΔW carry rounding of ~1e-7, which
    // must not add a rank to a target that the spectrum meets on paper.
    const double target = (options.energy - 1e-6) * total;
    rank = 1;
    while (rank < cap && cum[rank - 1] < target) ++rank;
  }
  return {rank, total > 0.0 ? std::min(1.0, cum[rank - 1] / total) : 1.0};
}

torch::Tensor round_rows(const torch::Tensor& m, int bits, const std::string& tensor_name) {
  const QuantScheme scheme{bits, -1, true};
  return dequantize(quantize_rtn(m.to(torch::kFloat32).contiguous(), scheme, {}, tensor_name));
}

}  // namespace

LowRankFit fit_lowrank(const torch::Tensor& delta, const std::optional<torch::Tensor>& xtx,
                       const LowRankOptions& options, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  validate(delta, xtx, options, tensor_name);
  const int64_t out = delta.size(0);
  const int64_t in = delta.size(1);
  const int64_t full = std::min(out, in);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(delta.device());

  // delta64: [out, in]
  const torch::Tensor delta64 = delta.to(torch::kFloat64);
  if (!delta64.ne(0).any().item<bool>()) {
    const RankChoice choice = choose_rank(torch::zeros({full}, torch::kFloat64), options);
    return {torch::zeros({choice.rank, in}, f32), torch::zeros({out, choice.rank}, f32),
            choice.rank, choice.captured};
  }

  // target: the matrix truncated, ΔW (SVD) or ΔW·Q·√Λ (EoRA), [out, in].
  torch::Tensor target = delta64;
  if (options.method == LowRankMethod::kEora) {
    torch::Tensor h = xtx->to(delta.device(), torch::kFloat64);  // [in, in]
    h = (h + h.t()).mul_(0.5);
    if (h.ne(0).any().item<bool>()) {           // an all-zero H carries no weighting: plain SVD
      torch::Tensor eigenvalues, eigenvectors;  // Λ [in] ascending, Q [in, in]
      try {
        std::tie(eigenvalues, eigenvectors) = torch::linalg_eigh(h);
      } catch (const c10::Error& e) {
        fail_internal("{}: eigendecomposition of XᵀX failed: {}", subject(tensor_name),
                      e.what_without_backtrace());
      }
      const double largest = eigenvalues.max().item<double>();
      if (!(largest > 0.0)) {
        fail_problems(tensor_name, {fmt::format("XᵀX is not positive semidefinite (largest "
                                                "eigenvalue {:.3g}); it must be a sum of xᵀx",
                                                largest)});
      }
      const torch::Tensor root = eigenvalues.clamp_min(kEigenvalueFloor * largest).sqrt_();
      target = delta64.mm(eigenvectors * root);  // scales column j of Q by √λ_j
    }
  }

  torch::Tensor u, s, vh;  // U [out, k], σ [k], Vᵀ [k, in]
  try {
    std::tie(u, s, vh) = torch::linalg_svd(target, /*full_matrices=*/false);
  } catch (const c10::Error& e) {
    fail_internal("{}: SVD of the compression error failed: {}", subject(tensor_name),
                  e.what_without_backtrace());
  }
  if (!all_finite(s) || !all_finite(u)) {
    fail_internal("{}: the SVD of the compression error returned non-finite values",
                  subject(tensor_name));
  }
  const RankChoice choice = choose_rank(s.square(), options);
  // B = U_r, A = U_rᵀ·ΔW: the same product as U_rΣ_rV_rᵀ·(Q√Λ)⁻¹ without dividing by √Λ or σ.
  torch::Tensor b = u.narrow(1, 0, choice.rank);  // [out, r]
  torch::Tensor a = b.t().mm(delta64);            // [r, in]
  if (options.adapter_bits > 0) {
    // Round B, then refit A to the rounded B before rounding it: A = pinv(B_q)·ΔW minimises
    // ‖(ΔW − B_q·A)·S‖_F for every invertible weighting S, the clamped EoRA one included.
    b = round_rows(b, options.adapter_bits, tensor_name).to(torch::kFloat64);
    a = torch::linalg_pinv(b).mm(delta64);
    a = round_rows(a, options.adapter_bits, tensor_name);
  }
  return {a.to(torch::kFloat32).contiguous(), b.to(torch::kFloat32).contiguous(), choice.rank,
          choice.captured};
}

double weighted_error(const torch::Tensor& delta, const LowRankFit& fit, const torch::Tensor& xtx) {
  torch::NoGradGuard no_grad;
  const bool shapes_ok = delta.defined() && delta.dim() == 2 && fit.a.defined() &&
                         fit.b.defined() && fit.a.dim() == 2 && fit.b.dim() == 2 && xtx.defined() &&
                         xtx.dim() == 2 && fit.a.size(1) == delta.size(1) &&
                         fit.b.size(0) == delta.size(0) && fit.a.size(0) == fit.b.size(1) &&
                         xtx.size(0) == delta.size(1) && xtx.size(1) == delta.size(1);
  if (!shapes_ok) {
    fail_user(
        "weighted_error: shapes disagree: delta {}, A {}, B {}, XᵀX {} (want [out, in], "
        "[r, in], [out, r], [in, in])",
        delta.defined() ? shape_string(delta) : "none",
        fit.a.defined() ? shape_string(fit.a) : "none",
        fit.b.defined() ? shape_string(fit.b) : "none", xtx.defined() ? shape_string(xtx) : "none");
  }
  const auto f64 = torch::kFloat64;
  const torch::Tensor error =  // [out, in]
      delta.to(f64) - fit.b.to(delta.device(), f64).mm(fit.a.to(delta.device(), f64));
  return (error.mm(xtx.to(delta.device(), f64)) * error).sum().item<double>();
}

}  // namespace presso

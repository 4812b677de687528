// lib/lowrank: low-rank paths B·A fitted to a linear's compression error
// ΔW = W_original − W_compressed, so that W_compressed + B·A stands in for W_original (a LoRA
// adapter with lora_alpha = r). Owns the math only — truncated SVD, EoRA's eigenspace projection
// (Liu et al., "EoRA: Training-free Compensation for Compressed LLM with Eigenspace Low-Rank
// Approximation", arXiv 2410.21271), rank choice by energy, optional rounding of the factors —
// as free functions on tensors. Knows nothing of models, passes, files or adapters on disk.
// May include lib/common, lib/quant and LibTorch.
//
// Factors. Both methods return B = U_r (orthonormal columns) and A = U_rᵀ·ΔW [r, in], where U_r
// are the top-r left singular vectors of the matrix the method truncates (ΔW for SVD, ΔW·Q·√Λ for
// EoRA). The product is the textbook one — for SVD U_rΣ_rV_rᵀ; for EoRA U_rΣ_rV_rᵀ·(Q√Λ)⁻¹,
// since V_rᵀ = Σ_r⁻¹U_rᵀ·ΔW·Q√Λ — but written this way no factor ever divides by √Λ or by σ:
//   - it stays finite and exact when H is singular or ΔW' has zero singular values (the paper's
//     A = V_rᵀ·diag(1/√Λ)·Qᵀ amplifies rounding noise by √(λ_max/λ_min) in the directions the
//     calibration barely excites);
//   - per-row rounding (adapter_bits) sees balanced rows: B's rows mix r unit-norm columns, and
//     each row of A carries its own σ on its own scale. With B = U_rΣ_r a row of B would share one
//     scale between σ_1 and σ_r, and columns with σ_i < σ_1/2^bits would round to zero.
// With adapter_bits, B is rounded first and A refitted to it, A = pinv(B_q)·ΔW (optimal for any
// invertible weighting, so for both methods), then rounded.
//
// EoRA and the eigenvalues. H = Σ xᵀx is positive semidefinite; eigh (fp64) returns its
// eigenvalues with rounding noise, some slightly negative, some exactly zero (a direction the
// calibration never excited). Λ is clamped from below at 1e-8·λ_max (√Λ at 1e-4·√λ_max). Such a
// direction carries no weighted (output) error whatever A does there, so its weight only has to
// keep the projection invertible: then the column space of ΔW·Q·√Λ is that of ΔW, B·A equals ΔW
// at full rank, and among the optimal fits the one chosen is the plain projection of ΔW there.
// 1e-8 keeps those directions ~1e-4 below the top singular value, far above fp64 rounding (the
// SVD runs in fp64 for that reason) and far below anything that moves the weighted optimum.
// GPTQModel's eora.py instead replaces negative eigenvalues by the smallest positive one and adds
// 1e-6·I to Q√Λ when it cannot be inverted. An all-zero H (no calibration signal) falls back to
// plain SVD. Up to the clamp, EoRA minimises ‖(ΔW − BA)Xᵀ‖_F (Eckart–Young in the H-weighted
// norm), so its weighted error is never above SVD's at the same rank.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace presso {

enum class LowRankMethod { kSvd, kEora };

struct LowRankOptions {
  LowRankMethod method = LowRankMethod::kEora;
  int64_t rank = 16;  // used when energy == 0; capped by min(out, in)
  // (0, 1]: the smallest rank whose singular values hold this share of Σσ² (of ΔW for SVD, of
  // ΔW·Q·√Λ for EoRA), at least 1 (a LoRA adapter needs r >= 1), capped by max_rank. A share
  // within 1e-6 of the target meets it, so fp32 rounding of ΔW never adds a rank.
  double energy = 0.0;
  int64_t max_rank = 0;  // cap for energy (0 = min(out, in))
  // 0: factors in fp32; 2..8: A and B rounded to a symmetric per-row RTN grid of that width
  // (fake-quantized, fp32 values), through lib/quant's quantize_rtn/dequantize, group_size -1.
  int adapter_bits = 0;
};

struct LowRankFit {
  torch::Tensor a;  // [rank, in] fp32
  torch::Tensor b;  // [out, rank] fp32
  int64_t rank = 0;
  // Share of the error energy Σσ² (H-weighted for EoRA) that the rank keeps, before any rounding
  // of the factors; 1 for a zero ΔW.
  double captured = 0.0;
};

// delta [out, in] (any float dtype, any device; the fit is fp32 on the same device); xtx
// [in, in] = Σ xᵀx of the linear's inputs, required for EoRA, ignored by SVD. UserError naming
// `tensor_name` on bad options, bad shapes or non-finite input; InternalError if the
// decomposition itself fails.
LowRankFit fit_lowrank(const torch::Tensor& delta, const std::optional<torch::Tensor>& xtx,
                       const LowRankOptions& options, const std::string& tensor_name = "");

// ‖(ΔW − BA)Xᵀ‖_F² computed as tr((ΔW − BA)·H·(ΔW − BA)ᵀ) with H = xtx, accumulated in fp64;
// for tests and reports.
double weighted_error(const torch::Tensor& delta, const LowRankFit& fit, const torch::Tensor& xtx);

}  // namespace presso

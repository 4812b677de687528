#include "lib/quant/gptq.h"

#include <cmath>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/quant/gptq_block.h"
#include "lib/quant/gptq_lazy_batch.h"
#include "lib/quant/tensor_checks.h"

namespace presso {
namespace {

void validate_options(const GptqOptions& options, const std::string& tensor_name) {
  std::vector<std::string> problems;
  if (options.block_size < 1) {
    problems.push_back(fmt::format("block_size {} must be >= 1", options.block_size));
  }
  if (!(options.damp >= 0) || !std::isfinite(options.damp)) {
    problems.push_back(fmt::format("damp {} must be a finite number >= 0", options.damp));
  }
  if (options.max_damp_retries < 0) {
    problems.push_back(fmt::format("max_damp_retries {} must be >= 0", options.max_damp_retries));
  }
  const SweepPruning& pruning = options.pruning;
  if (pruning.n > 0 || pruning.m > 0) {
    if (!(pruning.n > 0 && pruning.n < pruning.m)) {
      problems.push_back(fmt::format("pruning {}:{} needs 0 < N < M", pruning.n, pruning.m));
    } else if (options.block_size % pruning.m != 0) {
      problems.push_back(fmt::format("block_size {} must be a multiple of M = {} (N:M groups "
                                     "may not straddle blocks)",
                                     options.block_size, pruning.m));
    }
    if (pruning.block_mask) problems.push_back("pruning is either unstructured or N:M, not both");
  }
  if (pruning.active() && options.act_order) {
    problems.push_back("pruning during the sweep has no act_order (SparseGPT visits columns in "
                       "order)");
  }
  if (problems.empty()) return;
  std::string message = fmt::format("tensor '{}': gptq options:", tensor_name);
  for (const auto& problem : problems) message += " " + problem + ";";
  message.pop_back();
  throw UserError(message);
}

// The weights a grid is computed from: pruned ones read as 0, which every grid represents.
torch::Tensor kept(const torch::Tensor& w, const torch::Tensor& keep) {
  return keep.defined() ? w * keep : w;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The next damping fraction after a failed factorization.
double raised_damp(double fraction) { return fraction > 0 ? fraction * 10 : 0.01; }

// Factors H + fraction·mean(diag H)·I; the upper Cholesky factor of its inverse, or an undefined
// tensor when either Cholesky factorization fails.
torch::Tensor inverse_upper_factor(const torch::Tensor& h, const torch::Tensor& mean_diagonal,
                                   double fraction) {
  torch::Tensor damped = h.clone();
  damped.diagonal().add_(mean_diagonal * fraction);
  auto [lower, info] = torch::linalg_cholesky_ex(damped, /*upper=*/false, /*check_errors=*/false);
  if (info.item<int64_t>() != 0) return {};
  damped = torch::Tensor();
  const torch::Tensor inverse = torch::cholesky_inverse(lower);
  lower = torch::Tensor();
  auto [upper, info_upper] =
      torch::linalg_cholesky_ex(inverse, /*upper=*/true, /*check_errors=*/false);
  if (info_upper.item<int64_t>() != 0 || !torch::isfinite(upper).all().item<bool>()) return {};
  return upper;
}

}  // namespace

bool gptq_fused_cuda_available() { return gptq_internal::fused_cuda_available(); }

int64_t gptq_fused_cuda_max_block() { return gptq_internal::fused_cuda_max_columns(); }

MseSearch gptq_mse_search() {
  MseSearch search;
  search.maxshrink = 0.8;
  search.patience = 0;
  search.grid = 100.0;
  search.norm = 2.4;
  return search;
}

std::string damping_note(double requested, const GptqHessian& hessian) {
  if (hessian.retries == 0) return "";
  return fmt::format("the Hessian did not factor with damp {}; raised to {} ({} retr{})", requested,
                     hessian.damp_used, hessian.retries, hessian.retries == 1 ? "y" : "ies");
}

GptqHessian prepare_gptq_hessian(const torch::Tensor& hessian, const GptqOptions& options,
                                 torch::Device device, const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  validate_options(options, tensor_name);
  if (hessian.dim() != 2 || hessian.size(0) != hessian.size(1)) {
    fail_user("tensor '{}': the Hessian must be square [in, in], got {}", tensor_name,
              shape_string(hessian));
  }
  // H: [in, in], a private fp32 copy.
  torch::Tensor h = hessian.to(device, torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
  if (!torch::isfinite(h).all().item<bool>()) {
    fail_user("tensor '{}': the Hessian holds NaN or infinite values", tensor_name);
  }
  GptqHessian result;
  // An input that is always 0 leaves its weights free; H_jj = 1 keeps H invertible and, as its
  // row and column are 0, decouples it from the others.
  result.dead = h.diagonal() == 0;
  h.diagonal().masked_fill_(result.dead, 1.0);
  if (options.act_order) {
    // The original's torch.argsort(descending=True) leaves the order of ties to the sort
    // implementation; a stable sort fixes it to column order.
    result.perm = std::get<1>(torch::sort(h.diagonal(), /*stable=*/true, /*dim=*/0,
                                          /*descending=*/true));
    h = h.index_select(0, *result.perm).index_select(1, *result.perm);
  }
  const torch::Tensor mean_diagonal = h.diagonal().mean();
  double fraction = options.damp;
  std::string tried;
  for (int attempt = 0;; ++attempt) {
    torch::Tensor upper = inverse_upper_factor(h, mean_diagonal, fraction);
    if (upper.defined()) {
      result.inverse_factor = upper;
      result.damp_used = fraction;
      result.retries = attempt;
      return result;
    }
    tried += (tried.empty() ? "" : ", ") + fmt::format("{:g}", fraction);
    if (attempt >= options.max_damp_retries) {
      fail_user(
          "tensor '{}': the Hessian is not positive definite even when damped (damp tried: {}; "
          "each a fraction of mean(diag H) = {:g} added to the diagonal). Give more or more "
          "varied calibration samples, or a larger damp",
          tensor_name, tried, mean_diagonal.item<double>());
    }
    fraction = raised_damp(fraction);
  }
}

GptqResult gptq_sweep(const torch::Tensor& weight, const GptqHessian& hessian,
                      const GptqOptions& options, const std::optional<torch::Tensor>& mask,
                      const std::string& tensor_name) {
  torch::NoGradGuard no_grad;
  validate_options(options, tensor_name);
  if (weight.dim() != 2 || !weight.is_floating_point()) {
    fail_user("tensor '{}': expected a floating-point weight [out, in], got {} {}", tensor_name,
              c10::toString(weight.scalar_type()), shape_string(weight));
  }
  const int64_t out = weight.size(0);
  const int64_t in = weight.size(1);
  const QuantScheme& scheme = options.scheme;
  if (options.quantize) validate_scheme(scheme, in, tensor_name);
  if (!hessian.inverse_factor.defined() ||
      hessian.inverse_factor.sizes() != torch::IntArrayRef({in, in})) {
    fail_user("tensor '{}': the prepared Hessian is {}, the weight {} needs [{}, {}]", tensor_name,
              hessian.inverse_factor.defined() ? shape_string(hessian.inverse_factor) : "empty",
              shape_string(weight), in, in);
  }
  if (hessian.perm.has_value() != options.act_order) {
    fail_internal("tensor '{}': the Hessian was prepared with act_order {}, the sweep asks {}",
                  tensor_name, hessian.perm.has_value(), options.act_order);
  }
  const torch::Device device = weight.device();
  const SweepPruning& pruning = options.pruning;
  if (pruning.active() && mask) {
    fail_internal("tensor '{}': a sweep either honours a given mask or chooses one", tensor_name);
  }
  if (pruning.n > 0 && in % pruning.m != 0) {
    fail_user("tensor '{}': N:M pruning needs M = {} to divide the input width {}", tensor_name,
              pruning.m, in);
  }
  // The CUDA kernel neither chooses N:M masks nor leaves weights unquantized.
  const bool cuda_kernel_fits = options.quantize && pruning.n == 0 &&
                                options.block_size <= gptq_fused_cuda_max_block();
  GptqSweepKernel kernel = options.kernel;
  if (kernel == GptqSweepKernel::kAuto) {
    kernel = device.is_cpu()                      ? GptqSweepKernel::kFusedCpu
             : device.is_cuda() && cuda_kernel_fits ? GptqSweepKernel::kFusedCuda
                                                    : GptqSweepKernel::kTensorOps;
  }
  if (kernel == GptqSweepKernel::kFusedCpu && !device.is_cpu()) {
    fail_user("tensor '{}': the fused CPU GPTQ sweep runs on CPU tensors only, the weight is on {}",
              tensor_name, device.str());
  }
  if (kernel == GptqSweepKernel::kFusedCuda) {
    if (!gptq_fused_cuda_available()) {
      fail_user(
          "tensor '{}': this build has no fused CUDA GPTQ sweep (it needs a CUDA compiler "
          "and a CUDA LibTorch at configure time)",
          tensor_name);
    }
    if (!device.is_cuda()) {
      fail_user(
          "tensor '{}': the fused CUDA GPTQ sweep runs on CUDA tensors only, the weight is "
          "on {}",
          tensor_name, device.str());
    }
    if (options.block_size > gptq_fused_cuda_max_block()) {
      fail_user(
          "tensor '{}': the fused CUDA GPTQ sweep takes blocks of at most {} columns, "
          "block_size is {}",
          tensor_name, gptq_fused_cuda_max_block(), options.block_size);
    }
    if (!cuda_kernel_fits) {
      fail_user(
          "tensor '{}': the fused CUDA GPTQ sweep always quantizes and takes no N:M pruning; use "
          "the tensor-ops sweep",
          tensor_name);
    }
  }
  if (!all_finite(weight)) {
    fail_user("tensor '{}': the weight holds NaN or infinite values", tensor_name);
  }
  // W: [out, in] fp32 working copy; keep: [out, in] fp32 1/0 or undefined.
  torch::Tensor w = weight.to(torch::kFloat32).clone(torch::MemoryFormat::Contiguous);
  torch::Tensor keep;
  if (mask) {
    expect_tensor(*mask, {out, in}, torch::kBool, "sparsity mask", tensor_name);
    keep = mask->to(device).to(torch::kFloat32);
  } else if (pruning.active()) {
    keep = torch::ones({out, in}, w.options());  // filled in as the sweep chooses
  }
  const torch::Tensor upper = hessian.inverse_factor.to(device);
  const torch::Tensor dead = hessian.dead.to(device);
  const std::optional<torch::Tensor> perm =
      hessian.perm ? std::optional<torch::Tensor>(hessian.perm->to(device)) : std::nullopt;

  const bool quantize = options.quantize;
  const bool per_channel = quantize && scheme.group_size == -1;
  const bool dynamic_groups = quantize && !per_channel && !options.static_groups;
  const int64_t group_size = quantize ? effective_group_size(scheme, in) : in;
  const int64_t groups = quantize ? group_count(scheme, in) : 1;
  QuantGrid grid;
  // The original finds per-channel grids before zeroing dead columns, static groups after.
  if (per_channel) grid = compute_grid(kept(w, keep), scheme, options.grid, tensor_name);
  if (dead.any().item<bool>()) w.masked_fill_(dead.unsqueeze(0), 0.0);
  if (quantize && !per_channel && options.static_groups) {
    grid = compute_grid(kept(w, keep), scheme, options.grid, tensor_name);
  }
  const auto float_options = w.options();
  // Undefined without quantization: the sweeps then keep the weights as they are.
  torch::Tensor scale, zero;
  if (quantize) {
    scale = dynamic_groups ? torch::zeros({out, groups}, float_options) : grid.scale;
    zero = dynamic_groups ? torch::zeros({out, groups}, float_options)
                          : grid.zero_point.to(torch::kFloat32);
  }

  // Visiting order. position_group: the grid column each visited position is quantized with.
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(device);
  torch::Tensor position_group = torch::zeros({in}, long_options);
  if (perm) {
    w = w.index_select(1, *perm);
    if (keep.defined()) keep = keep.index_select(1, *perm);
  }
  if (!per_channel) {
    const torch::Tensor column =
        (perm && options.static_groups) ? *perm : torch::arange(in, long_options);
    position_group = column.div(group_size, "floor");
  }

  // The block errors are stored column-major for the CUDA sweep, which writes one column of
  // every row at a time (coalesced so).
  const bool column_major = kernel == GptqSweepKernel::kFusedCuda;
  torch::Tensor codes =
      quantize ? torch::empty({out, in}, w.options().dtype(torch::kInt8)) : torch::Tensor();
  // The CUDA sweep reads each block's part of U by columns.
  const torch::Tensor upper_by_columns = column_major ? upper.t().contiguous().t() : upper;
  const torch::Tensor row_loss = torch::zeros({out}, float_options.dtype(torch::kFloat64));
  // The fused sweeps compute dynamic group grids themselves (no host work per block); an MSE
  // search has no scalar form, so its grids are found here with tensor ops.
  const bool kernel_refreshes = kernel != GptqSweepKernel::kTensorOps && !options.grid.mse;
  const group_grid::GridRule rule = group_grid_rule(scheme, options.grid);
  const bool search_alone = options.grid.mse && options.grid.mse->patience > 0;
  gptq_internal::LazyBatchUpdate lazy_update(w, upper, options.block_size,
                                             dynamic_groups ? group_size : 0, column_major);
  for (int64_t i1 = 0; i1 < in; i1 += options.block_size) {
    const int64_t i2 = std::min(i1 + options.block_size, in);
    // SparseGPT's unstructured choice, before the block's group grids read the mask.
    if (pruning.block_mask) {
      const torch::Tensor chosen =
          pruning.block_mask(w.slice(1, i1, i2), upper.diagonal().slice(0, i1, i2));
      keep.slice(1, i1, i2).copy_(chosen);
    }
    // Groups starting in this block get their grids from the weights as the earlier blocks left
    // them: columns [first·group_size, last·group_size).
    const int64_t first = dynamic_groups ? ceil_div(i1, group_size) : 0;
    const int64_t last = dynamic_groups ? ceil_div(i2, group_size) : 0;
    std::optional<gptq_internal::GroupRefresh> refresh;
    if (first < last && kernel_refreshes) {
      const int64_t c1 = first * group_size, c2 = last * group_size;
      refresh = gptq_internal::GroupRefresh{w.slice(1, c1, c2),
                                            keep.defined() ? keep.slice(1, c1, c2) : keep, first,
                                            group_size, rule};
    } else if (first < last) {
      // The original finds each group's grid on its own; an MSE search that stops early
      // (patience) depends on what else it searches with, so it gets one group per call.
      const int64_t step = search_alone ? 1 : last - first;
      for (int64_t g1 = first; g1 < last; g1 += step) {
        const int64_t g2 = std::min(g1 + step, last);
        const int64_t c1 = g1 * group_size, c2 = g2 * group_size;
        const QuantGrid fresh =
            compute_grid(kept(w.slice(1, c1, c2), keep.defined() ? keep.slice(1, c1, c2) : keep),
                         scheme, grid_options_for_columns(options.grid, perm, c1, c2), tensor_name);
        scale.slice(1, g1, g2).copy_(fresh.scale);
        zero.slice(1, g1, g2).copy_(fresh.zero_point);
      }
    }
    gptq_internal::BlockGrid block;
    block.scale = scale;
    if (quantize && !scheme.symmetric) block.zero = zero;
    block.group = position_group.slice(0, i1, i2);
    if (keep.defined()) block.keep = keep.slice(1, i1, i2);
    block.prune_n = pruning.n;
    block.prune_m = pruning.m;
    const torch::Tensor w1 = w.slice(1, i1, i2);
    const torch::Tensor err1 = lazy_update.block_errors(i1, i2);
    const torch::Tensor hinv1 = upper_by_columns.slice(0, i1, i2).slice(1, i1, i2);
    const gptq_internal::BlockOutputs outputs{
        err1, quantize ? codes.slice(1, i1, i2) : codes, w1, row_loss};
    const gptq_internal::GroupRefresh* fresh_groups = refresh ? &*refresh : nullptr;
    switch (kernel) {
      case GptqSweepKernel::kFusedCpu:
        gptq_internal::sweep_block_fused_cpu(w1, hinv1, block, fresh_groups, scheme.bits, outputs);
        break;
      case GptqSweepKernel::kFusedCuda:
        gptq_internal::sweep_block_fused_cuda(w1, hinv1, block, fresh_groups, scheme.bits, outputs);
        break;
      default:
        gptq_internal::sweep_block_tensor_ops(w1, hinv1, block, scheme.bits, outputs);
        break;
    }
    if (i2 < in) lazy_update.apply(i1, i2);
  }
  if (kernel_refreshes && dynamic_groups && !all_finite(scale)) {
    fail_user("tensor '{}': a quantization scale overflows {}; store scales in a wider type",
              tensor_name, c10::toString(options.grid.scale_dtype));
  }

  // The sweeps replaced each block's weights by their dequantized values, (code − z)·s (0 where
  // pruned).
  torch::Tensor dequantized = w;
  std::optional<torch::Tensor> g_idx;
  if (perm) {
    const torch::Tensor inverse =
        torch::empty_like(*perm).scatter_(0, *perm, torch::arange(in, long_options));
    dequantized = dequantized.index_select(1, inverse);
    if (quantize) codes = codes.index_select(1, inverse);
    if (dynamic_groups) {
      // Column c was visited at position inverse[c], in group inverse[c] / group_size.
      const torch::Tensor groups_of_column = inverse.div(group_size, "floor").to(torch::kInt32);
      const torch::Tensor consecutive =
          torch::arange(in, long_options).div(group_size, "floor").to(torch::kInt32);
      if (!torch::equal(groups_of_column, consecutive)) g_idx = groups_of_column;
    }
  }
  GptqResult result;
  if (quantize) result.weight = QuantizedWeight{codes, scale, zero.to(torch::kInt32), g_idx, scheme};
  result.dequantized = dequantized;
  if (mask) {
    result.mask = *mask;
  } else if (keep.defined()) {
    result.mask = keep.to(torch::kBool);  // chosen in the sweep (never permuted)
  }
  result.loss = row_loss.sum().item<double>() / 2;
  result.damp_used = hessian.damp_used;
  result.retries = hessian.retries;
  return result;
}

GptqResult gptq_quantize(const torch::Tensor& weight, const torch::Tensor& hessian,
                         const GptqOptions& options, const std::optional<torch::Tensor>& mask,
                         const std::string& tensor_name) {
  if (weight.dim() == 2 && hessian.dim() == 2 && hessian.size(0) != weight.size(1)) {
    fail_user("tensor '{}': the Hessian {} does not match the weight {} (needs [{}, {}])",
              tensor_name, shape_string(hessian), shape_string(weight), weight.size(1),
              weight.size(1));
  }
  return gptq_sweep(weight, prepare_gptq_hessian(hessian, options, weight.device(), tensor_name),
                    options, mask, tensor_name);
}

double layer_objective(const torch::Tensor& weight, const torch::Tensor& approx,
                       const torch::Tensor& hessian) {
  torch::NoGradGuard no_grad;
  const torch::Tensor delta =
      (weight.to(torch::kFloat64) - approx.to(weight.device(), torch::kFloat64));
  return (delta.mm(hessian.to(weight.device(), torch::kFloat64)) * delta).sum().item<double>();
}

}  // namespace presso

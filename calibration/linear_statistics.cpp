#include "calibration/linear_statistics.h"

#include <algorithm>
#include <utility>

#include "lib/common/errors.h"

namespace presso {
namespace {

// Rows per chunk are chosen so that one fp32 chunk holds at most this many elements (64 MiB):
// large enough that each addmm_ is an efficient GEMM (thousands of rows for in ≤ 16384), small
// enough that converting a bf16 or remote input never holds a second full copy of it.
constexpr int64_t kChunkElements = int64_t{1} << 24;

std::string shape_text(const torch::Tensor& t) {
  std::string text = "[";
  for (int64_t i = 0; i < t.dim(); ++i) text += (i ? ", " : "") + std::to_string(t.size(i));
  return text + "]";
}

}  // namespace

StatsRequest& StatsRequest::operator|=(const StatsRequest& other) {
  hessian = hessian || other.hessian;
  mean_abs = mean_abs || other.mean_abs;
  sq_norm = sq_norm || other.sq_norm;
  return *this;
}

bool StatsRequest::operator==(const StatsRequest& other) const {
  return hessian == other.hessian && mean_abs == other.mean_abs && sq_norm == other.sq_norm;
}

StatsRequest operator|(StatsRequest a, const StatsRequest& b) { return a |= b; }

InputSums input_sums(const torch::Tensor& input, const StatsRequest& request,
                     torch::Device device) {
  torch::NoGradGuard no_grad;
  const int64_t in = input.size(-1);
  const torch::Tensor rows = input.reshape({-1, in});  // [N, in]; a view for contiguous inputs
  const int64_t n = rows.size(0);
  InputSums sums;
  sums.request = request;
  sums.device = device;
  sums.tokens = n;
  sums.samples = input.dim() == 2 ? 1 : input.size(0);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  if (request.hessian) sums.xtx = torch::zeros({in, in}, options);
  if (request.mean_abs) sums.abs_sum = torch::zeros({in}, options);
  if (request.sq_norm) sums.sq_norm = torch::zeros({in}, options);
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(in, 1));
  for (int64_t start = 0; request.any() && start < n; start += chunk_rows) {
    // x: [rows, in] fp32 on the accumulation device; no copy when the input already is.
    const torch::Tensor x =
        rows.narrow(0, start, std::min(chunk_rows, n - start)).to(device, torch::kFloat32);
    if (request.hessian) sums.xtx.addmm_(x.t(), x);
    if (request.mean_abs) sums.abs_sum.add_(x.abs().sum(0));
    if (request.sq_norm) sums.sq_norm.add_(x.square().sum(0));
  }
  return sums;
}

LinearStatistics::LinearStatistics(StatsRequest request, std::optional<torch::Device> device)
    : request_(request), device_(device) {}

// Sums are kept raw in fp32 and normalised only when read. GPTQ keeps a running average instead
// (H *= n/(n+t); H += 2/(n+t)·XᵀX), which adds a rounding per batch and gains nothing: range is no
// concern (n·max x² ≈ 1e6 tokens · 1e8 = 1e14 ≪ 3e38), and the error of the sum is dominated by
// the fp32 GEMM's own accumulation inside each chunk, the same in both forms. fp64 would double
// the memory of the largest Hessians (14336² is 0.8 GB in fp32) and run at a small fraction of the
// speed on GPUs, for precision that the fp32 Cholesky that consumes H cannot use.
void LinearStatistics::add(const torch::Tensor& input) {
  if (!input.defined() || input.dim() < 2 || !input.is_floating_point())
    fail_internal("LinearStatistics::add: expected a floating-point input [..., in], got {} {}",
                  input.defined() ? std::string(c10::toString(input.scalar_type())) : "undefined",
                  input.defined() ? shape_text(input) : "");
  add(input_sums(input, request_, device_for(input)), input);
}

void LinearStatistics::add(const InputSums& sums, const torch::Tensor& input) {
  const int64_t in = input.size(-1);
  if (in_features_ == 0) {
    if (in == 0)
      fail_internal("LinearStatistics::add: input {} has no channels", shape_text(input));
    in_features_ = in;
    if (!device_) device_ = input.device();
    const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(*device_);
    if (request_.hessian) xtx_ = torch::zeros({in, in}, options);
    if (request_.mean_abs) abs_sum_ = torch::zeros({in}, options);
    if (request_.sq_norm) sq_norm_ = torch::zeros({in}, options);
  } else if (in != in_features_) {
    fail_internal("LinearStatistics::add: input {} has {} channels, earlier inputs had {}",
                  shape_text(input), in, in_features_);
  }
  if ((sums.request | request_) != sums.request)
    fail_internal("LinearStatistics::add: the shared sums miss a requested statistic");
  torch::NoGradGuard no_grad;
  tokens_ += sums.tokens;
  samples_ += sums.samples;
  if (request_.hessian) xtx_.add_(sums.xtx);
  if (request_.mean_abs) abs_sum_.add_(sums.abs_sum);
  if (request_.sq_norm) sq_norm_.add_(sums.sq_norm);
}

void LinearStatistics::scale_input_channels(const torch::Tensor& factor) {
  if (!factor.defined() || factor.dim() != 1 || factor.size(0) != in_features_)
    fail_internal("LinearStatistics::scale_input_channels: factor must be [{}], got {}",
                  in_features_, factor.defined() ? shape_text(factor) : "undefined");
  torch::NoGradGuard no_grad;
  const torch::Tensor f = factor.to(*device_, torch::kFloat32);  // [in]
  // (x·diag f)ᵀ(x·diag f) = diag f · XᵀX · diag f
  if (request_.hessian) xtx_.mul_(f.unsqueeze(1)).mul_(f.unsqueeze(0));
  if (request_.mean_abs) abs_sum_.mul_(f.abs());
  if (request_.sq_norm) sq_norm_.mul_(f.square());
}

void LinearStatistics::check_requested(bool requested, const char* what) const {
  if (!requested)
    fail_internal("LinearStatistics: {} was not requested (hessian={}, mean_abs={}, sq_norm={})",
                  what, request_.hessian, request_.mean_abs, request_.sq_norm);
}

void LinearStatistics::check_has_tokens(const char* what) const {
  if (tokens_ == 0) fail_internal("LinearStatistics: {} asked for before any input arrived", what);
}

const torch::Tensor& LinearStatistics::xtx() const {
  check_requested(request_.hessian, "the Hessian (XᵀX)");
  return xtx_;
}

const torch::Tensor& LinearStatistics::abs_sum() const {
  check_requested(request_.mean_abs, "the mean |x|");
  return abs_sum_;
}

const torch::Tensor& LinearStatistics::sq_norm() const {
  check_requested(request_.sq_norm, "the squared norm Σx²");
  return sq_norm_;
}

torch::Tensor LinearStatistics::hessian() const {
  check_requested(request_.hessian, "the Hessian (XᵀX)");
  check_has_tokens("the Hessian");
  return xtx_ * (2.0 / static_cast<double>(samples_));
}

torch::Tensor LinearStatistics::mean_abs() const {
  check_requested(request_.mean_abs, "the mean |x|");
  check_has_tokens("the mean |x|");
  return abs_sum_ / static_cast<double>(tokens_);
}

torch::Tensor LinearStatistics::mean_square() const {
  check_requested(request_.sq_norm, "the mean x²");
  check_has_tokens("the mean x²");
  return sq_norm_ / static_cast<double>(tokens_);
}

StatisticsCollector::StatisticsCollector(std::optional<torch::Device> device) : device_(device) {}

void StatisticsCollector::request(const std::string& linear_name, const StatsRequest& request) {
  const auto it = stats_.find(linear_name);
  if (it == stats_.end()) {
    stats_.emplace(linear_name, LinearStatistics(request, device_));
    return;
  }
  const StatsRequest merged = it->second.request() | request;
  if (merged == it->second.request()) return;
  if (it->second.token_count() > 0)
    fail_internal(
        "StatisticsCollector: '{}' already saw {} tokens; request its statistics before "
        "the first forward",
        linear_name, it->second.token_count());
  it->second = LinearStatistics(merged, device_);
}

void StatisticsCollector::hook(const std::string& linear_name, const torch::Tensor& input) {
  const auto it = stats_.find(linear_name);
  if (it == stats_.end()) return;
  LinearStatistics& stats = it->second;
  if (!input.defined() || input.dim() < 2 || !input.is_floating_point()) {
    stats.add(input);  // the InternalError naming what arrived
    return;
  }
  const torch::Device device = stats.device_for(input);
  const bool reusable = last_sums_ && last_input_.is_same(input) &&
                        last_sums_->device == device &&
                        (last_sums_->request | stats.request()) == last_sums_->request;
  if (!reusable) {
    last_sums_ = input_sums(input, stats.request(), device);
    last_input_ = input;
  }
  stats.add(*last_sums_, input);
}

LinearHook StatisticsCollector::as_hook() {
  return [this](const std::string& linear_name, const torch::Tensor& input) {
    hook(linear_name, input);
  };
}

bool StatisticsCollector::contains(const std::string& linear_name) const {
  return stats_.count(linear_name) > 0;
}

const LinearStatistics& StatisticsCollector::at(const std::string& linear_name) const {
  const auto it = stats_.find(linear_name);
  if (it == stats_.end())
    fail_internal("StatisticsCollector: no statistics for '{}' (never requested, or taken)",
                  linear_name);
  return it->second;
}

LinearStatistics& StatisticsCollector::at(const std::string& linear_name) {
  return const_cast<LinearStatistics&>(std::as_const(*this).at(linear_name));
}

LinearStatistics StatisticsCollector::take(const std::string& linear_name) {
  LinearStatistics stats = std::move(at(linear_name));
  stats_.erase(linear_name);
  return stats;
}

void StatisticsCollector::put(const std::string& linear_name, LinearStatistics statistics) {
  stats_.erase(linear_name);
  stats_.emplace(linear_name, std::move(statistics));
}

std::vector<std::string> StatisticsCollector::names() const {
  std::vector<std::string> names;
  for (const auto& entry : stats_) names.push_back(entry.first);
  return names;
}

void StatisticsCollector::clear() {
  stats_.clear();
  last_input_ = torch::Tensor();
  last_sums_.reset();
}

}  // namespace presso

#include "calibration/windows.h"

#include <ATen/CPUGeneratorImpl.h>

#include "lib/common/errors.h"

namespace presso {

torch::Tensor sample_window_starts(int64_t n_tokens, int64_t nsamples, int64_t seqlen,
                                   uint64_t seed) {
  if (nsamples < 1) fail_user("calibration: nsamples must be at least 1, got {}", nsamples);
  if (seqlen < 2) fail_user("calibration: seqlen must be at least 2, got {}", seqlen);
  // The exclusive upper bound GPTQ uses; it leaves the last token unused by any window.
  const int64_t high = n_tokens - seqlen - 1;
  if (high <= 0)
    fail_user(
        "calibration: the data has {} tokens, too few for windows of {} tokens: at least "
        "{} are needed (seqlen + 2); give more text or a smaller seqlen",
        n_tokens, seqlen, seqlen + 2);
  // A CPUGeneratorImpl constructed with `seed` is in the state torch.manual_seed(seed) puts the
  // default generator in (mt19937 seeded, no cached normal), and randint draws from it exactly as
  // Python's torch.randint does; both calls exist unchanged in LibTorch 1.13 and 2.x.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randint(0, high, {nsamples}, generator, torch::kInt64);
}

torch::Tensor sample_windows(const std::vector<int32_t>& tokens, int64_t nsamples, int64_t seqlen,
                             uint64_t seed) {
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  const torch::Tensor starts = sample_window_starts(n_tokens, nsamples, seqlen, seed);
  // from_blob does not copy; the index_select below does, so nothing aliases `tokens` afterwards.
  const torch::Tensor stream =
      torch::from_blob(const_cast<int32_t*>(tokens.data()), {n_tokens}, torch::kInt32);
  // index: [nsamples, seqlen], row i = starts[i] + [0, seqlen)
  const torch::Tensor index =
      starts.unsqueeze(1) + torch::arange(seqlen, torch::kInt64).unsqueeze(0);
  return stream.index_select(0, index.reshape(-1)).to(torch::kInt64).view({nsamples, seqlen});
}

}  // namespace presso

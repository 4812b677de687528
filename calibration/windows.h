// Seeded sampling of calibration windows from a token stream (see calibration_data.h for the
// layer). The draw is the one of GPTQ's data loaders, in the form a PyTorch script writes it:
//   torch.manual_seed(seed); starts = torch.randint(0, n_tokens - seqlen - 1, (nsamples,))
// so that a Python reference and presso calibrate on exactly the same windows.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace presso {

// int64 [nsamples] window starts, each in [0, n_tokens - seqlen - 1), drawn from a fresh CPU
// generator seeded with `seed` (the global generator is neither used nor disturbed). UserError
// when nsamples < 1, seqlen < 2, or the stream is too short (n_tokens < seqlen + 2).
torch::Tensor sample_window_starts(int64_t n_tokens, int64_t nsamples, int64_t seqlen,
                                   uint64_t seed);

// int64 [nsamples, seqlen]: row i is tokens[starts[i] : starts[i] + seqlen], with the starts of
// sample_window_starts. Windows may overlap; no BOS is added.
torch::Tensor sample_windows(const std::vector<int32_t>& tokens, int64_t nsamples, int64_t seqlen,
                             uint64_t seed);

}  // namespace presso

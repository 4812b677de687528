// The reference log-prob file of `presso eval --save-logprobs F` / `--logprobs F`: a model's
// top-k next-token log-probs and the rest's mass at every scored position (kl_divergence.h),
// so a CI job computes KL against the original model without running it again.
//
// Stored as safetensors (any reader can open it): tensors `tokens` I32 [N, k], `logp` F32 [N, k],
// `rest` F32 [N], `nll` F32 [N], N = windows · (seqlen − 1); the metadata says what was measured:
// format "presso-logprobs", format_version, protocol, seqlen, windows, top_k, the model's, data's
// and scored tokens' fingerprints, presso's version. With k = 32 a position takes 264 bytes
// instead of 4 · vocab (32 KiB for a vocabulary of 8192).
#pragma once

#include <cstdint>
#include <string>

#include "lib/eval/kl_divergence.h"

namespace presso {

struct LogProbsHeader {
  std::string protocol;  // the protocol id of the report (eval_report.h)
  int64_t seqlen = 0;
  int64_t windows = 0;
  int64_t top_k = 0;
  std::string model_fingerprint;
  std::string data_fingerprint;
  std::string tokens_fingerprint;
  std::string presso_version;
};

struct LogProbsFile {
  LogProbsHeader header;
  ReferenceLogProbs rows;
};

// Written to a temporary name, then renamed.
void save_logprobs(const std::string& path, const LogProbsFile& file);

// UserError naming the path and the field for a file that is not a complete log-prob file of
// this format version (truncated, missing metadata, wrong shapes or dtypes).
LogProbsFile load_logprobs(const std::string& path);

}  // namespace presso

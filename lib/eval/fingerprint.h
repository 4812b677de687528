// Content fingerprints that reports and log-prob files carry, so a gate can refuse to compare
// numbers measured on different data, tokens or reference models.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace presso {

// SHA-256 over the checkpoint's config.json and tensor files (and the adapter's files when
// `adapter_dir` is not empty): each file's name and its own SHA-256, in a fixed order.
std::string model_fingerprint(const std::string& model_dir, const std::string& adapter_dir = "");

// SHA-256 of the first `count` token ids as little-endian int32: what a protocol actually scored.
std::string tokens_fingerprint(const std::vector<int32_t>& tokens, int64_t count);

}  // namespace presso

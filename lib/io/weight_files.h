// The size on disk of a checkpoint's tensors: what "bits per weight" is measured from.
#pragma once

#include <cstdint>
#include <string>

namespace presso {

// Bytes of the .safetensors files in `dir` and in its adapter/ (a low-rank path is part of what
// is served); 0 for a directory without any.
int64_t weight_file_bytes(const std::string& dir);

}  // namespace presso

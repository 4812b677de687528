#include "lib/io/weight_files.h"

#include <filesystem>

namespace presso {

int64_t weight_file_bytes(const std::string& dir) {
  namespace fs = std::filesystem;
  int64_t total = 0;
  for (const fs::path& folder : {fs::path(dir), fs::path(dir) / "adapter"}) {
    std::error_code error;
    if (!fs::is_directory(folder, error)) continue;
    for (const auto& entry : fs::directory_iterator(folder, error)) {
      if (entry.is_regular_file(error) && entry.path().extension() == ".safetensors")
        total += static_cast<int64_t>(entry.file_size(error));
    }
  }
  return total;
}

}  // namespace presso

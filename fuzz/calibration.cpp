// The calibration readers of files that are not plain text (plain text only meets the tokenizer,
// fuzzed by tokenizer_encode). The first input byte picks the format, the rest is the file:
// JSONL documents, JSON ids, or a pre-tokenized .safetensors — the last through a temporary file,
// since that reader maps a file (its header parse is fuzzed in memory by safetensors_header).
// Accepted ids must lie in the vocabulary.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "calibration/calibration_data.h"
#include "fuzz/harness.h"

namespace presso {
namespace {

constexpr int64_t kVocabSize = 8192;  // the fixture models'

// One file per process, rewritten for each input and removed at exit.
struct ScratchFile {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("presso_fuzz_calibration_" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  ~ScratchFile() {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
};

std::vector<int32_t> read_safetensors_bytes(std::string_view bytes) {
  static const ScratchFile scratch;
  std::ofstream(scratch.path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return read_safetensors_ids(scratch.path, kVocabSize);
}

}  // namespace

bool fuzz_calibration(std::string_view input) {
  if (input.empty()) return false;
  const std::string_view file = input.substr(1);
  std::vector<int32_t> ids;
  switch (static_cast<uint8_t>(input[0]) % 3) {
    case 0:
      parse_jsonl_texts(file, "calib.jsonl", "text");
      return true;
    case 1:
      ids = parse_json_ids(file, "calib.json", kVocabSize);
      break;
    default:
      ids = read_safetensors_bytes(file);
  }
  for (int32_t id : ids) fuzz_expect(id >= 0 && id < kVocabSize, "ids lie in the vocabulary");
  return true;
}

}  // namespace presso

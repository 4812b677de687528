// The harness table and what every harness shares.
#include <cstdlib>
#include <string>

#include "fuzz/harness.h"
#include "lib/common/errors.h"

namespace presso {

const std::vector<FuzzHarness>& fuzz_harnesses() {
  static const std::vector<FuzzHarness> table = {
      {"safetensors_header", fuzz_safetensors_header, false},
      {"shard_index", fuzz_shard_index, false},
      {"model_config", fuzz_model_config, false},
      {"tokenizer_json", fuzz_tokenizer_json, false},
      {"tokenizer_encode", fuzz_tokenizer_encode, true},
      {"recipe", fuzz_recipe, false},
      {"calibration", fuzz_calibration, false},
  };
  return table;
}

const FuzzHarness& find_fuzz_harness(const std::string& name) {
  std::string names;
  for (const FuzzHarness& harness : fuzz_harnesses()) {
    if (harness.name == name) return harness;
    names += (names.empty() ? "" : ", ") + std::string(harness.name);
  }
  fail_internal("no fuzz harness '{}' (harnesses: {})", name, names);
}

bool run_fuzz_harness(const FuzzHarness& harness, std::string_view input) {
  try {
    return harness.run(input);
  } catch (const UserError&) {
    return false;
  }
}

void fuzz_expect(bool holds, const char* what) {
  if (!holds) fail_internal("fuzz invariant broken: {}", what);
}

std::optional<std::filesystem::path> fuzz_fixtures_dir() {
  const char* env = std::getenv("PRESSO_FIXTURES");
  const std::filesystem::path dir = env ? env : PRESSO_DEFAULT_FIXTURES;
  if (std::filesystem::is_directory(dir)) return dir;
  return std::nullopt;
}

}  // namespace presso

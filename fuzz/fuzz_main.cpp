// The libFuzzer entry of one harness, compiled once per program with PRESSO_FUZZ_HARNESS naming
// it (fuzz/CMakeLists.txt). A refusal (UserError) is an ordinary outcome; any other exception is
// printed and aborts, which libFuzzer reports as a crash and saves the input of.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "fuzz/harness.h"

namespace {

const presso::FuzzHarness& harness() {
  static const presso::FuzzHarness& found = presso::find_fuzz_harness(PRESSO_FUZZ_HARNESS);
  return found;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (harness().needs_fixtures && !presso::fuzz_fixtures_dir()) {
    std::fprintf(stderr, "fuzz_%s: needs ../shared/fixtures (or PRESSO_FIXTURES)\n",
                 harness().name);
    std::exit(2);
  }
  // One empty input first, outside libFuzzer's per-input -timeout, which would otherwise also time
  // the one-time set-up (tokenizer_encode loads three real tokenizers, qwen3's of 11 MB).
  presso::run_fuzz_harness(harness(), {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    presso::run_fuzz_harness(harness(),
                             std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_%s: %s\n", harness().name, e.what());
    std::abort();
  }
  return 0;
}

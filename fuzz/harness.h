// fuzz/: one libFuzzer harness per parser of user input. A harness is a function from arbitrary
// bytes to "accepted" (true) or "refused" (it throws UserError, the CLI's exit 2); anything else
// it lets out — another exception, an InternalError for a broken invariant, a crash, a sanitizer
// report, a hang — is a finding. The same functions drive the libFuzzer programs
// (fuzz_main.cpp, built with -DPRESSO_FUZZ=ON by scripts/fuzz) and replay the saved findings in
// tests/fuzz_regressions/<name>/ in the Catch2 suite (tests/fuzz_regressions.cpp).
//
// Sits above every layer (the recipe harness needs the passes' schemas); nothing includes it
// but the fuzz programs and that test.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace presso {

// The harnesses, one per file.
bool fuzz_safetensors_header(std::string_view input);  // fuzz/safetensors_header.cpp
bool fuzz_shard_index(std::string_view input);         // fuzz/shard_index.cpp
bool fuzz_model_config(std::string_view input);        // fuzz/model_config.cpp
bool fuzz_tokenizer_json(std::string_view input);      // fuzz/tokenizer_json.cpp
bool fuzz_tokenizer_encode(std::string_view input);    // fuzz/tokenizer_encode.cpp
bool fuzz_recipe(std::string_view input);              // fuzz/recipe.cpp
bool fuzz_calibration(std::string_view input);         // fuzz/calibration.cpp

struct FuzzHarness {
  const char* name;  // program fuzz_<name>, folder tests/fuzz_regressions/<name>/
  bool (*run)(std::string_view input);
  bool needs_fixtures;  // reads ../shared/fixtures (the fixed tokenizers of tokenizer_encode)
};

// Every harness, in the order scripts/fuzz runs them.
const std::vector<FuzzHarness>& fuzz_harnesses();
// InternalError listing the harnesses for an unknown name.
const FuzzHarness& find_fuzz_harness(const std::string& name);

// harness.run(input), a UserError counted as a refusal (false).
bool run_fuzz_harness(const FuzzHarness& harness, std::string_view input);

// InternalError "fuzz invariant broken: <what>" unless `holds`.
void fuzz_expect(bool holds, const char* what);

// PRESSO_FIXTURES, else the ../shared/fixtures beside the source tree; nullopt when absent.
std::optional<std::filesystem::path> fuzz_fixtures_dir();

}  // namespace presso

// bench_tokenizer: single-thread encoding speed of tokenizer.json files on a text file.
// Prints one machine-readable line per tokenizer:
//   tokenizer=PATH bytes=N tokens=N best_s=S mb_per_s=R runs=N
// (MB = 10^6 bytes; best of --runs runs; each run starts with an empty word cache, since a fresh
// tokenizer is loaded for it outside the timed region).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "lib/common/errors.h"
#include "lib/common/files.h"
#include "lib/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  CLI::App app{"Measures how fast presso's tokenizer encodes a text file (one thread)."};
  std::vector<std::string> tokenizers;
  std::string text_path = "tests/data/eval.txt";
  int runs = 5;
  app.add_option("tokenizers", tokenizers, "tokenizer.json files or model directories")->required();
  app.add_option("--text", text_path, "text file to encode")->capture_default_str();
  app.add_option("--runs", runs, "runs per tokenizer; the fastest counts")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    const std::string text = presso::read_file_bytes(text_path);
    for (const std::string& path : tokenizers) {
      double best = 1e30;
      size_t count = 0;
      for (int run = 0; run < runs; ++run) {
        const bool is_json = path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0;
        const presso::Tokenizer tokenizer =
            is_json ? presso::Tokenizer::from_file(path) : presso::Tokenizer::from_model_dir(path);
        const auto start = std::chrono::steady_clock::now();
        count = tokenizer.encode(text, false).size();
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
        best = std::min(best, elapsed.count());
      }
      std::printf("tokenizer=%s bytes=%zu tokens=%zu best_s=%.4f mb_per_s=%.2f runs=%d\n",
                  path.c_str(), text.size(), count, best, text.size() / best / 1e6, runs);
    }
  } catch (const presso::Error& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}

// Where tests find their data: ../shared/fixtures (golden) and tests/data (shipped defaults).
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace presso::test {

namespace fs = std::filesystem;

// The fixtures folder, or nullopt after printing the skip marker that CTest reads
// (SKIP_REGULAR_EXPRESSION "PRESSO-SKIP:"). Use as
//   auto fx = fixtures_or_skip(); if (!fx) return;
inline std::optional<fs::path> fixtures_or_skip() {
  const char* env = std::getenv("PRESSO_FIXTURES");
  fs::path dir = env ? fs::path(env) : fs::path(PRESSO_DEFAULT_FIXTURES);
  if (fs::is_directory(dir)) return dir;
  std::cout << "PRESSO-SKIP: fixtures folder " << dir
            << " is absent (clone ../shared beside the project, or set PRESSO_FIXTURES)\n";
  return std::nullopt;
}

inline fs::path test_data() { return fs::path(PRESSO_TEST_DATA); }

// Every checkpoint directory directly under fixtures/<group> (group = "tiny" or "models"),
// sorted, so a checkpoint added to the fixtures is tested at once.
inline std::vector<fs::path> checkpoint_dirs(const fs::path& fixtures, const std::string& group) {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(fixtures / group))
    if (entry.is_directory() && fs::exists(entry.path() / "config.json")) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// Every checkpoint of the fixtures: tiny/ then models/.
inline std::vector<fs::path> all_checkpoint_dirs(const fs::path& fixtures) {
  std::vector<fs::path> dirs = checkpoint_dirs(fixtures, "tiny");
  for (const auto& dir : checkpoint_dirs(fixtures, "models")) dirs.push_back(dir);
  return dirs;
}

}  // namespace presso::test

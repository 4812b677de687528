// Progress on long work: a one-line bar with rate and ETA on a terminal; silent when stderr is
// not a terminal, when CI is set, or when PRESSO_NO_PROGRESS is set, so logs stay clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace presso {

bool progress_bar_enabled();

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1);
  void finish();  // draws the final state and ends the line

 private:
  void draw(bool final_draw);

  std::string label_;
  std::string unit_;
  int64_t total_;
  int64_t done_ = 0;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace presso

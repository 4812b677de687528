// Progress on long work, so that no command goes quiet. On a terminal: a one-line bar with rate
// and ETA, redrawn in place. Elsewhere (a log file, CI): a plain line when the work starts, one
// per step at most every few seconds, one at the end, and a heartbeat line whenever a single step
// has printed nothing for kHeartbeatSeconds. PRESSO_NO_PROGRESS (or a command's --no-progress,
// which constructs no Progress) silences both.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace presso {

enum class ProgressMode { kBar, kLines, kOff };
// kOff with PRESSO_NO_PROGRESS; kBar when stderr is a terminal and CI is unset; else kLines.
ProgressMode progress_mode();

// "label: text" on stderr, unless progress is off: what a command does before its counted work.
void progress_note(const std::string& label, const std::string& text);

class Progress {
 public:
  static constexpr double kHeartbeatSeconds = 5.0;

  // `total` steps of `unit` ("windows", "blocks"); prints its first line at once.
  Progress(std::string label, int64_t total, std::string unit,
           double heartbeat_seconds = kHeartbeatSeconds);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1);
  // What the current step is doing ("block 3: gptq"), shown after the counts.
  void set_step(std::string step);
  void finish();  // prints the final state and ends the line

 private:
  using Clock = std::chrono::steady_clock;
  // Both with mutex_ held.
  void print(bool final_line);
  std::string status(bool final_line) const;
  void heartbeat_loop();

  const std::string label_;
  const std::string unit_;
  const int64_t total_;
  const ProgressMode mode_;
  const double heartbeat_seconds_;
  const Clock::time_point start_;

  std::mutex mutex_;
  int64_t done_ = 0;
  std::string step_;
  bool finished_ = false;
  Clock::time_point last_print_;
  std::condition_variable wake_;
  std::thread heartbeat_;  // kLines only
};

}  // namespace presso

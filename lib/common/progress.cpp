#include "lib/common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace presso {
namespace {

// A terminal bar is redrawn at most ten times a second (a write per step would cost more than
// the step); a log gets a line per step at most every two seconds.
constexpr double kBarRedrawSeconds = 0.1;
constexpr double kLineSeconds = 2.0;

std::string duration_text(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto whole = static_cast<int64_t>(seconds + 0.5);
  if (whole < 3600) return fmt::format("{}m{:02d}s", whole / 60, whole % 60);
  return fmt::format("{}h{:02d}m", whole / 3600, whole % 3600 / 60);
}

}  // namespace

ProgressMode progress_mode() {
  if (std::getenv("PRESSO_NO_PROGRESS") != nullptr) return ProgressMode::kOff;
  if (isatty(STDERR_FILENO) && std::getenv("CI") == nullptr) return ProgressMode::kBar;
  return ProgressMode::kLines;
}

void progress_note(const std::string& label, const std::string& text) {
  if (progress_mode() == ProgressMode::kOff) return;
  std::fprintf(stderr, "%s: %s\n", label.c_str(), text.c_str());
  std::fflush(stderr);
}

Progress::Progress(std::string label, int64_t total, std::string unit, double heartbeat_seconds)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      mode_(progress_mode()),
      heartbeat_seconds_(heartbeat_seconds),
      start_(Clock::now()),
      last_print_(start_) {
  if (mode_ == ProgressMode::kOff) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    print(false);
  }
  if (mode_ == ProgressMode::kLines) heartbeat_ = std::thread([this] { heartbeat_loop(); });
}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n) {
  if (mode_ == ProgressMode::kOff) return;
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  if (done_ >= total_ && mode_ == ProgressMode::kLines) return;  // finish() prints the last line
  const double since = std::chrono::duration<double>(Clock::now() - last_print_).count();
  if (since >= (mode_ == ProgressMode::kBar ? kBarRedrawSeconds : kLineSeconds)) print(false);
}

void Progress::set_step(std::string step) {
  if (mode_ == ProgressMode::kOff) return;
  std::lock_guard<std::mutex> lock(mutex_);
  step_ = std::move(step);
  if (mode_ == ProgressMode::kBar) print(false);
}

void Progress::finish() {
  if (mode_ == ProgressMode::kOff) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    finished_ = true;
    step_.clear();
    print(true);
  }
  wake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void Progress::heartbeat_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!finished_) {
    wake_.wait_for(lock, std::chrono::duration<double>(std::min(0.25, heartbeat_seconds_ / 4)));
    if (finished_) break;
    const double quiet = std::chrono::duration<double>(Clock::now() - last_print_).count();
    if (quiet >= heartbeat_seconds_) print(false);
  }
}

std::string Progress::status(bool final_line) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  std::string text = fmt::format("{}/{} {}", done_, total_, unit_);
  if (final_line) return text + ", done in " + duration_text(elapsed);
  text += ", " + duration_text(elapsed) + " elapsed";
  if (done_ > 0 && done_ < total_) {
    const double eta = elapsed / static_cast<double>(done_) * static_cast<double>(total_ - done_);
    text += ", ETA " + duration_text(eta);
  }
  if (!step_.empty()) text += " (" + step_ + ")";
  return text;
}

void Progress::print(bool final_line) {
  last_print_ = Clock::now();
  if (mode_ == ProgressMode::kLines) {
    std::fprintf(stderr, "%s: %s\n", label_.c_str(), status(final_line).c_str());
  } else {
    constexpr int kWidth = 30;
    const double fraction =
        total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    std::string bar(static_cast<size_t>(fraction * kWidth), '#');
    bar.resize(kWidth, '.');
    // \033[K clears what a longer previous status left on the line.
    std::fprintf(stderr, "\r%s [%s] %s\033[K%s", label_.c_str(), bar.c_str(),
                 status(final_line).c_str(), final_line ? "\n" : "");
  }
  std::fflush(stderr);
}

}  // namespace presso

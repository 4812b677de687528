#include "lib/common/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace presso {

bool progress_bar_enabled() {
  return isatty(STDERR_FILENO) && std::getenv("CI") == nullptr &&
         std::getenv("PRESSO_NO_PROGRESS") == nullptr;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(progress_bar_enabled()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (enabled_) draw(false);
}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::advance(int64_t n) {
  done_ += n;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // Redraw at most ten times a second: a terminal write per step would cost more than the step.
  if (now - last_draw_ > std::chrono::milliseconds(100) || done_ >= total_) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final_draw) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::string eta = "--";
  if (rate > 0 && done_ < total_) eta = fmt::format("{:.0f}s", static_cast<double>(total_ - done_) / rate);
  std::fprintf(stderr, "\r%s [%s] %lld/%lld %s  %.1f %s/s  %s %s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), rate,
               unit_.c_str(), final_draw ? "done in" : "eta",
               final_draw ? fmt::format("{:.1f}s", elapsed).c_str() : eta.c_str());
  if (final_draw) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace presso

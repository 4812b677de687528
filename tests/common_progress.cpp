// Progress in a log (stderr not a terminal): a first line at once, heartbeats while a step is
// long, and a last line; PRESSO_NO_PROGRESS silences it.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

#include "lib/common/files.h"
#include "lib/common/progress.h"

namespace {

// What `work` writes to stderr, captured through a temporary file.
std::string stderr_of(const std::function<void()>& work) {
  char path[] = "/tmp/presso-progress-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  work();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  const std::string text = presso::read_file_bytes(path);
  std::remove(path);
  return text;
}

int count(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("progress in a log prints at once, beats while a step is long, and ends", "[unit]") {
  unsetenv("PRESSO_NO_PROGRESS");
  REQUIRE(presso::progress_mode() == presso::ProgressMode::kLines);  // stderr is a file here
  constexpr double kBeat = 0.2;  // seconds, for the test; commands beat every kHeartbeatSeconds
  const std::string log = stderr_of([&] {
    presso::Progress progress("work", 2, "steps", kBeat);
    progress.set_step("step 1: slow");
    std::this_thread::sleep_for(std::chrono::duration<double>(kBeat * 3.5));
    progress.advance();
    progress.advance();
    progress.finish();
  });
  INFO(log);
  CHECK(log.rfind("work: 0/2 steps, ", 0) == 0);  // the first line, before any step ends
  CHECK(count(log, "(step 1: slow)") >= 2);       // heartbeats during the long step
  CHECK(count(log, "work: 2/2 steps, done in ") == 1);
  CHECK(log.back() == '\n');
}

TEST_CASE("PRESSO_NO_PROGRESS silences progress", "[unit]") {
  setenv("PRESSO_NO_PROGRESS", "1", 1);
  const std::string log = stderr_of([] {
    presso::Progress progress("work", 3, "steps");
    progress.advance(3);
  });
  unsetenv("PRESSO_NO_PROGRESS");
  CHECK(log.empty());
}

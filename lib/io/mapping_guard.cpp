#include "lib/io/mapping_guard.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace presso {
namespace {

// Fixed storage: the handler may not allocate or lock. A slot is published by storing its begin
// address last (release) and freed by clearing it first.
struct Slot {
  std::atomic<uintptr_t> begin{0};
  std::atomic<size_t> size{0};
  char path[1024] = {};
};

constexpr int kSlots = 1024;  // mapped files at once: shards, adapters, log-prob files
Slot g_slots[kSlots];
std::mutex g_slots_mutex;  // serialises guard/unguard (never taken by the handler)

void write_all(const char* text, size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(STDERR_FILENO, text, size);
    if (written <= 0) return;
    text += written;
    size -= static_cast<size_t>(written);
  }
}

void write_text(const char* text) { write_all(text, std::strlen(text)); }

void on_sigbus(int, siginfo_t* info, void*) {
  const auto address = reinterpret_cast<uintptr_t>(info->si_addr);
  for (const Slot& slot : g_slots) {
    const uintptr_t begin = slot.begin.load(std::memory_order_acquire);
    if (begin == 0 || address < begin || address - begin >= slot.size.load()) continue;
    write_text("presso: error: ");
    write_text(slot.path);
    write_text(
        ": changed on disk while presso was reading it (truncated or rewritten by another "
        "program, bytes presso had mapped are gone); run again once the file is complete\n");
    ::_exit(2);
  }
  // Not a mapping of ours: the default action, once the faulting access runs again.
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  ::sigaction(SIGBUS, &fallback, nullptr);
}

void install_handler() {
  struct sigaction action {};
  action.sa_sigaction = on_sigbus;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, nullptr);
}

}  // namespace

int guard_mapping(const void* begin, size_t size, const std::string& path) {
  static std::once_flag installed;
  std::call_once(installed, install_handler);
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  for (int i = 0; i < kSlots; ++i) {
    Slot& slot = g_slots[i];
    if (slot.begin.load(std::memory_order_relaxed) != 0) continue;
    const size_t length = std::min(path.size(), sizeof(slot.path) - 1);
    std::memcpy(slot.path, path.data(), length);
    slot.path[length] = '\0';
    slot.size.store(size);
    slot.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    return i;
  }
  return -1;
}

void unguard_mapping(int slot) {
  if (slot < 0 || slot >= kSlots) return;
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  g_slots[slot].begin.store(0, std::memory_order_release);
}

}  // namespace presso

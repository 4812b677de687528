// How much memory this process can still take, for refusing a job up front (with the numbers)
// instead of dying half-way with a bad_alloc or the OOM killer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace presso {

struct AvailableMemory {
  uint64_t bytes = 0;
  std::string source;  // "MemAvailable", or the cgroup limit that is lower
};

// /proc/meminfo's MemAvailable, lowered to what the memory cgroup's limit leaves (v2 memory.max,
// v1 memory.limit_in_bytes); nullopt where neither can be read (not Linux).
std::optional<AvailableMemory> available_memory();

// A size line of /proc/self/status ("VmRSS": resident now, "VmHWM": the peak so far), in bytes;
// nullopt off Linux. Not getrusage's ru_maxrss: that also counts the address space of the
// process that exec'd us (a vfork parent's), which can be far larger than anything we touched.
std::optional<uint64_t> process_memory_bytes(const std::string& field);

// "1.50 GiB".
std::string format_gib(double bytes);

}  // namespace presso

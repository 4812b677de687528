#include "lib/common/system_memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace presso {
namespace {

// The first number in `path` (after `key` when given), in the file's unit times `scale`.
std::optional<uint64_t> read_number(const char* path, const std::string& key = "",
                                    uint64_t scale = 1) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!key.empty() && line.rfind(key, 0) != 0) continue;
    std::istringstream fields(key.empty() ? line : line.substr(key.size()));
    uint64_t value = 0;
    if (fields >> value) return value * scale;
    return std::nullopt;  // "max": no limit
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> process_memory_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoull(line.substr(prefix.size())) * 1024;  // kB
  }
  return std::nullopt;
}

std::optional<AvailableMemory> available_memory() {
  std::optional<AvailableMemory> result;
  if (auto bytes = read_number("/proc/meminfo", "MemAvailable:", 1024))
    result = AvailableMemory{*bytes, "MemAvailable"};
  // The usage counts the page cache; its inactive part is given back on demand (docker's
  // `stats` subtracts it the same way).
  const struct {
    const char* limit;
    const char* usage;
    const char* stat;
    const char* reclaimable;
  } cgroups[] = {
      {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat",
       "inactive_file "},
      {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
       "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file "}};
  for (const auto& cgroup : cgroups) {
    const auto limit = read_number(cgroup.limit);
    auto usage = read_number(cgroup.usage);
    if (!limit || !usage) continue;
    *usage -= std::min(*usage, read_number(cgroup.stat, cgroup.reclaimable).value_or(0));
    const uint64_t left = *limit > *usage ? *limit - *usage : 0;
    if (!result || left < result->bytes) result = AvailableMemory{left, cgroup.limit};
  }
  return result;
}

std::string format_gib(double bytes) { return fmt::format("{:.2f} GiB", bytes / (1 << 30)); }

}  // namespace presso

// Files read through a memory mapping can shrink under presso: when another program truncates or
// rewrites a checkpoint while it is mapped, touching a page past the new end raises SIGBUS, and
// presso died with "Bus error" and no word of the file. Every mapping is registered here; a
// process-wide SIGBUS handler that finds the faulting address in a registered mapping prints
//   presso: error: <file>: changed on disk while presso was reading it ...
// and exits with 2 (user error), using only write(2) and _exit(2), which are async-signal-safe.
// A SIGBUS elsewhere keeps its default action.
#pragma once

#include <cstddef>
#include <string>

namespace presso {

// Registers [begin, begin + size) as a mapping of `path`, installing the handler on first use.
// Returns a slot for unguard_mapping, or -1 when every slot is taken (the mapping then goes
// unguarded: a SIGBUS there gets the default action).
int guard_mapping(const void* begin, size_t size, const std::string& path);

// Forgets the mapping of `slot` (no-op for -1); call it before unmapping.
void unguard_mapping(int slot);

}  // namespace presso

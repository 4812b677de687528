// Small file helpers shared by the layers: whole-file reads and the write-to-temporary-then-rename
// discipline that keeps a half-written output from ever sitting at its final path.
#pragma once

#include <string>

namespace presso {

// The whole file as bytes; UserError naming the path if it cannot be read.
std::string read_file_bytes(const std::string& path);

// Writes `contents` to `path` + ".tmp", then renames it onto `path`.
void write_file_atomically(const std::string& path, const std::string& contents);

}  // namespace presso

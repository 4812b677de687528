// Small file helpers shared by the layers: whole-file reads and the write-to-temporary-then-rename
// discipline that keeps a half-written output from ever sitting at its final path.
#pragma once

#include <string>

namespace presso {

// UserError naming `path` unless it is a regular file (or a link to one). Checked before every
// input file is opened: opening a FIFO blocks until a writer comes, and a device or a FIFO
// named `model.safetensors` or `tokenizer.json` would hang presso or feed it without end.
void require_regular_file(const std::string& path);

// The whole file as bytes; UserError naming the path if it is not a regular file or cannot be
// read.
std::string read_file_bytes(const std::string& path);

// Writes `contents` to `path` + ".tmp", then renames it onto `path`.
void write_file_atomically(const std::string& path, const std::string& contents);

// Deletes `path` and, if it is a directory, everything below it (symbolic links themselves, not
// their targets); a missing path is no error, and whatever cannot be deleted is left. Used instead
// of std::filesystem::remove_all, which crashes in binaries linked against PyTorch 2.x's
// libtorch_cpu.so: it exports an older copy of libstdc++'s directory iteration that the call
// can bind to.
void remove_tree(const std::string& path) noexcept;

}  // namespace presso

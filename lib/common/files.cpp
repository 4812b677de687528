#include "lib/common/files.h"

#include <ftw.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lib/common/errors.h"

namespace presso {

std::string read_file_bytes(const std::string& path) {
  if (std::filesystem::is_directory(path)) fail_user("{}: is a directory, expected a file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_user("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail_user("{}: read failed", path);
  return buffer.str();
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail_user("{}: cannot create: {}", tmp, std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp);
      fail_user("{}: write failed", tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    fail_user("{}: cannot rename into place: {}", path, ec.message());
  }
}

void remove_tree(const std::string& path) noexcept {
  // Depth first, so a directory is visited after its contents; not following links.
  nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) {
        std::remove(entry);  // unlink for files and links, rmdir for (now empty) directories
        return 0;
      },
      64, FTW_DEPTH | FTW_PHYS);
}

}  // namespace presso

#include "lib/common/output_paths.h"

#include <dirent.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <memory>

#include "lib/common/errors.h"
#include "lib/common/files.h"

namespace presso {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTemporaryMarker = ".presso-tmp-";

fs::path directory_path(const std::string& path) { return fs::path(normalized_path(path)); }

// The path with symlinks and `..` resolved where it exists; as given where that fails.
fs::path resolved(const std::string& path) {
  const fs::path p = directory_path(path);
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(p, ec);
  return ec ? p : canonical;
}

std::string named(const NamedPath& p) { return p.flag + " " + p.path; }

// Whether process `pid` exists (kill's EPERM: it exists, owned by someone else).
bool process_alive(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

}  // namespace

std::string normalized_path(const std::string& path) {
  fs::path p = fs::absolute(fs::path(path)).lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  return p.string();
}

bool same_or_below(const std::string& inner, const std::string& outer) {
  const fs::path a = resolved(inner), b = resolved(outer);
  auto ai = a.begin();
  for (auto bi = b.begin(); bi != b.end(); ++bi, ++ai) {
    if (bi->empty()) continue;  // a trailing separator
    if (ai == a.end() || *ai != *bi) return false;
  }
  return true;
}

void check_output_paths(const std::vector<NamedPath>& outputs,
                        const std::vector<NamedPath>& inputs) {
  std::vector<std::string> problems;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NamedPath& a = outputs[i];
    if (a.path.empty()) continue;
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      const NamedPath& b = outputs[j];
      if (b.path.empty()) continue;
      const bool b_in_a = same_or_below(b.path, a.path), a_in_b = same_or_below(a.path, b.path);
      if (a_in_b && b_in_a) {
        problems.push_back(fmt::format("{} and {} are the same path: each output needs its own",
                                       named(a), named(b)));
      } else if (a_in_b || b_in_a) {
        problems.push_back(
            fmt::format("{} lies inside {}: each output needs a path of its own, "
                        "outside the others",
                        named(a_in_b ? a : b), named(a_in_b ? b : a)));
      }
    }
    for (const NamedPath& input : inputs) {
      if (input.path.empty()) continue;
      const bool in_input = same_or_below(a.path, input.path);
      if (in_input && same_or_below(input.path, a.path)) {
        problems.push_back(fmt::format("{} is {}, which this run reads: write the output elsewhere",
                                       named(a), named(input)));
      } else if (in_input) {
        problems.push_back(
            fmt::format("{} lies inside {}, which this run reads: write the output elsewhere",
                        named(a), named(input)));
      } else if (same_or_below(input.path, a.path)) {
        problems.push_back(fmt::format("{} lies inside {}: writing the output would replace it",
                                       named(input), named(a)));
      }
    }
  }
  if (problems.size() == 1) throw UserError(problems.front());
  if (!problems.empty()) {
    throw UserError(fmt::format("the output paths have {} problems:\n  - {}", problems.size(),
                                fmt::join(problems, "\n  - ")));
  }
}

void check_output_file(const NamedPath& output) {
  if (fs::is_directory(output.path))
    fail_user("{}: is a directory; name the file to write", named(output));
  const fs::path parent = directory_path(output.path).parent_path();
  if (!fs::is_directory(parent))
    fail_user("{}: the directory {} does not exist; create it first", named(output),
              parent.string());
}

std::string temporary_directory_for(const std::string& dir) {
  const fs::path out = directory_path(dir);
  return (out.parent_path() /
          (out.filename().string() + kTemporaryMarker + std::to_string(::getpid())))
      .string();
}

std::vector<std::string> remove_stale_temporaries(const std::string& dir) {
  const fs::path parent = directory_path(dir).parent_path();
  std::vector<std::string> removed;
  // opendir rather than fs::directory_iterator: see remove_tree in files.h.
  std::unique_ptr<DIR, int (*)(DIR*)> listing(::opendir(parent.c_str()), ::closedir);
  if (!listing) return removed;
  const std::string marker = kTemporaryMarker;
  while (const dirent* entry = ::readdir(listing.get())) {
    const std::string name = entry->d_name;
    const size_t at = name.rfind(marker);
    if (at == std::string::npos || at == 0) continue;
    const std::string digits = name.substr(at + marker.size());
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const long pid = std::stol(digits);
    // This process's own temporaries are another output of the same run, still being written.
    if (pid == static_cast<long>(::getpid()) || process_alive(pid)) continue;
    const std::string path = (parent / name).string();
    remove_tree(path);
    removed.push_back(path);
  }
  return removed;
}

}  // namespace presso

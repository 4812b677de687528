// Where a command writes, checked before any work: outputs that collide with each other or lie in
// what the command reads are refused up front, so a long run never ends by finding its outputs
// unusable. Also the temporary directory an output is built in, and the removal of those that a
// killed run left behind.
#pragma once

#include <string>
#include <vector>

namespace presso {

// A path as the user gave it, with the flag that gave it ("-o", "--dense-copy", "the model").
struct NamedPath {
  std::string flag;
  std::string path;
};

// Absolute and normalised, without a trailing separator: "out/" and "./out" name "/cwd/out".
std::string normalized_path(const std::string& path);

// True when `inner` is `outer` or lies below it, after resolving `..`, symbolic links and
// trailing separators where the paths exist.
bool same_or_below(const std::string& inner, const std::string& outer);

// UserError listing every problem at once: two outputs that are the same path or one inside the
// other; an output that is an input or lies inside an input directory; an input inside an output
// directory (replacing the output would delete it). Nothing is created.
void check_output_paths(const std::vector<NamedPath>& outputs,
                        const std::vector<NamedPath>& inputs);

// UserError unless `output` (a file written at the end of a run) can be written there: it is not
// a directory and its parent directory exists.
void check_output_file(const NamedPath& output);

// `<dir>.presso-tmp-<pid of this process>`: where the output directory `dir` is built before it
// is renamed into place.
std::string temporary_directory_for(const std::string& dir);

// Deletes the `*.presso-tmp-<pid>` entries beside `dir` (in its parent directory) whose process
// is gone — what a killed run left — and returns their paths. Those of live processes stay.
std::vector<std::string> remove_stale_temporaries(const std::string& dir);

}  // namespace presso

// A fresh folder under the system temp dir for one test, removed with its contents at scope exit.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lib/common/files.h"

namespace presso::test {

class TempDir {
 public:
  explicit TempDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() /
             ("presso_test_" + tag + "_" + std::to_string(::getpid()) + "_" +
              std::to_string(counter_++))) {
    presso::remove_tree(path.string());
    std::filesystem::create_directories(path);
  }
  ~TempDir() { presso::remove_tree(path.string()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path / name).string(); }
  // Writes `contents` to `name` in the folder and returns its path.
  std::string write(const std::string& name, const std::string& contents) const {
    std::ofstream(path / name, std::ios::binary) << contents;
    return file(name);
  }

  const std::filesystem::path path;

 private:
  static inline int counter_ = 0;
};

}  // namespace presso::test

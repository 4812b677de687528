// Checkpoints that used to hang or crash presso: a FIFO where a file should be, a shard index
// nested 100k levels deep, and a checkpoint truncated while presso has it mapped (SIGBUS).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "lib/common/errors.h"
#include "lib/io/safetensors.h"
#include "tests/catch_torch.h"
#include "tests/temp_dir.h"
#include "tests/user_error.h"

namespace {

using Catch::Matchers::Contains;
using presso::test::TempDir;
using presso::test::user_error_of;

// A checkpoint file holding one fp32 tensor "w" of `elements` values.
std::string write_checkpoint(const TempDir& dir, int64_t elements) {
  const std::string path = dir.file("model.safetensors");
  presso::SafetensorsWriter writer(path);
  writer.add("w", torch::arange(elements, torch::kFloat32));
  writer.finish();
  return path;
}

}  // namespace

TEST_CASE("a FIFO named model.safetensors is refused instead of blocking", "[unit]") {
  TempDir dir("fifo_checkpoint");
  REQUIRE(::mkfifo(dir.file("model.safetensors").c_str(), 0600) == 0);
  CHECK_THAT(user_error_of([&] { presso::TensorStore::open_dir(dir.path.string()); }),
             Contains("model.safetensors") && Contains("FIFO"));
}

TEST_CASE("a shard index nested 100k levels deep is refused naming the index", "[unit]") {
  TempDir dir("deep_index");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  dir.write("model.safetensors.index.json", "{\"weight_map\": {\"w\": " + deep + "}}");
  CHECK_THAT(user_error_of([&] { presso::TensorStore::open_dir(dir.path.string()); }),
             Contains("model.safetensors.index.json") && Contains("nests deeper"));
}

TEST_CASE("a checkpoint truncated while mapped exits 2 naming the file", "[unit]") {
  TempDir dir("truncated_while_mapped");
  // 4 MiB of data: the tensor lies on pages past the header's.
  const std::string path = write_checkpoint(dir, int64_t{1} << 20);
  const std::string stderr_path = dir.file("stderr.txt");
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child maps the file, another "program" truncates it, the child reads the tensor.
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(err, STDERR_FILENO);
    try {
      presso::SafetensorsFile file(path);
      if (::truncate(path.c_str(), 4096) != 0) ::_exit(10);
      file.load("w");
    } catch (...) {
      ::_exit(11);
    }
    ::_exit(0);  // the read did not fault: the guard was never tested
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  std::ifstream err(stderr_path);
  std::stringstream message;
  message << err.rdbuf();
  INFO("child stderr: " << message.str());
  REQUIRE(WIFEXITED(status));  // not killed by SIGBUS
  CHECK(WEXITSTATUS(status) == 2);
  CHECK_THAT(message.str(), Contains("presso: error: " + path) && Contains("changed on disk"));
}

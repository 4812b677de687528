#include "lib/common/version.h"

#include <fmt/format.h>

namespace presso {

std::string version_description() {
  return fmt::format("{} (commit {}{})", presso_version(), build_commit(),
                     build_dirty() ? ", modified" : "");
}

}  // namespace presso

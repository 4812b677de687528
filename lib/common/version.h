// What presso is and what it was built from, for --version and every JSON report. The
// definitions are generated at build time by cmake/build_info.cmake.
#pragma once

#include <string>

namespace presso {

const char* presso_version();  // the project version, "0.1.0"
const char* build_commit();    // the full git commit hash, or "unknown" outside a checkout
bool build_dirty();            // tracked files differed from that commit when it was built

// "0.1.0 (commit 0123abcd…)", with ", modified" when build_dirty().
std::string version_description();

}  // namespace presso

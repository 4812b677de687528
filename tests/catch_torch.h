// Catch2 for test files that use LibTorch: LibTorch first, because Debian's build pulls in glog,
// whose CHECK macro must give way to Catch's.
#pragma once

#include <torch/types.h>
#undef CHECK
#include <catch2/catch.hpp>

// The compute runtime: which device and how many CPU threads LibTorch uses.
#pragma once

#include <string>

#include <torch/types.h>

namespace presso {

// "cpu", "cuda", "cuda:1" -> a torch::Device this build of LibTorch can use; UserError otherwise.
torch::Device parse_device(const std::string& text);

// Process-wide settings for compute, called once at start by the CLI and the bench programs:
// - every core for LibTorch's OpenMP pool, unless OMP_NUM_THREADS is set (the pool can start
//   with one thread where the runtime misreads the CPU quota, as on the Debian CI machine);
// - glibc's malloc keeps freed memory instead of returning it to the kernel. A first touch of a
//   page costs ~12 us on the project's VMs (measured: 65536 pages in 0.8 s), so a forward that
//   allocates and frees tensors of tens of MB each step spent half its time in page faults.
//   Peak memory is unchanged; it is just not given back until exit.
void configure_runtime();

// "libtorch 1.13.0 (cpu)" / "libtorch 2.11.0 (cuda)".
std::string libtorch_description();

}  // namespace presso

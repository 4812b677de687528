// The compute runtime: which device and how many CPU threads LibTorch uses.
#pragma once

#include <string>

#include <torch/types.h>

namespace presso {

// "cpu", "cuda", "cuda:1" -> a torch::Device this build of LibTorch can use; UserError otherwise.
torch::Device parse_device(const std::string& text);

// Process-wide settings for compute, called once at start by the CLI and the bench programs:
// every core for LibTorch's OpenMP pool, unless OMP_NUM_THREADS is set (the pool can start with
// one thread where the runtime misreads the CPU quota, as on the Debian CI machine).
void configure_runtime();

// glibc's malloc keeps freed memory instead of returning it to the kernel, for jobs that allocate
// and free same-sized tensors over and over (evaluation): a first touch of a page costs ~12 us on
// the project's VMs (measured: 65536 pages in 0.8 s), so a forward that allocates and frees tensors
// of tens of MB each step spent half its time in page faults. Not for compression: with blocks of
// changing sizes the heap fragments and grew to 3.7 GB on a model whose blocks need 0.5 GB.
void retain_freed_memory();

// The opposite, for compression: every allocation of 1 MiB or more is mapped on its own and given
// back when freed, so peak memory is what is alive at once (glibc's default raises that threshold
// to 32 MB as the program frees large blocks, and the heap then keeps what the last block freed).
void return_freed_memory();

// "libtorch 1.13.0 (cpu)" / "libtorch 2.11.0 (cuda)".
std::string libtorch_description();

}  // namespace presso

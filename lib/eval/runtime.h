// The compute runtime: which device and how many CPU threads LibTorch uses.
#pragma once

#include <string>

#include <torch/types.h>

namespace presso {

// "cpu", "cuda", "cuda:1" -> a torch::Device this build of LibTorch can use; UserError otherwise.
torch::Device parse_device(const std::string& text);

// LibTorch's OpenMP pool can start with one thread where the runtime misreads the CPU quota
// (seen on the Debian CI machine: omp_get_max_threads() == 1 on 2 cores), leaving the non-BLAS
// ops serial. Uses every core unless the user set OMP_NUM_THREADS.
void use_all_cpu_cores();

// "libtorch 1.13.0 (cpu)" / "libtorch 2.11.0 (cuda)".
std::string libtorch_description();

}  // namespace presso

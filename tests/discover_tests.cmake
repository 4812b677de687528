# Writes OUTPUT: one CTest test per Catch2 test case of EXECUTABLE, named "<tag>: <case>" and
# labelled with its tag (unit, golden or e2e), so `ctest -L unit` is the quick loop. Run after
# each build of a test program; it asks the program for each tag's cases (a few quick runs,
# where Catch2's own catch_discover_tests would run it twice per tag).
#
# Each test runs with one BLAS/OpenMP thread: `ctest -j2` runs two at once on two cores, and two
# processes of two threads each spin against each other (measured: 2.4x slower than one thread
# each). A case tagged [all-threads] keeps the machine's count (digests recorded with it), and on
# an x86-64 with AVX2 and FMA runs the kernels the digests were recorded with: ATen's AVX2 ones and
# OpenBLAS's Haswell ones, whatever wider ones the CPU has (an AVX-512 Xeon rounds GPTQ's products
# differently from an AMD EPYC otherwise; scripts/record-byte-identical pins the same).
cmake_policy(VERSION 3.18)  # a -P script starts with the oldest policies (IN_LIST, empty items)
function(list_cases tag out)
  execute_process(COMMAND "${EXECUTABLE}" "[${tag}]" --list-test-names-only
                  OUTPUT_VARIABLE names RESULT_VARIABLE status WORKING_DIRECTORY "${WORKING_DIR}")
  if(status LESS 0 OR NOT status MATCHES "^[0-9]+$")
    message(FATAL_ERROR "listing the tests of ${EXECUTABLE} failed (${status}): ${names}")
  endif()
  string(REPLACE "\n" ";" names "${names}")
  list(REMOVE_ITEM names "")
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

list_cases(all-threads all_threads)
set(pinned_kernels "")
execute_process(COMMAND grep -m1 -c -w -e avx2 /proc/cpuinfo OUTPUT_VARIABLE avx2 ERROR_QUIET)
execute_process(COMMAND grep -m1 -c -w -e fma /proc/cpuinfo OUTPUT_VARIABLE fma ERROR_QUIET)
if(avx2 MATCHES "^1" AND fma MATCHES "^1")
  set(pinned_kernels "ENVIRONMENT \"ATEN_CPU_CAPABILITY=avx2;OPENBLAS_CORETYPE=Haswell\"")
endif()
set(script "")
# The long kinds first: in a fresh build ctest has no timings and starts tests in this order.
foreach(label e2e golden unit)
  list_cases(${label} names)
  foreach(name IN LISTS names)
    set(environment "ENVIRONMENT OMP_NUM_THREADS=1")
    if(name IN_LIST all_threads)
      set(environment "${pinned_kernels}")
    endif()
    # Catch2 reads , [ and ] in a test spec as syntax.
    set(spec "${name}")
    foreach(char , [ ])
      string(REPLACE "${char}" "\\${char}" spec "${spec}")
    endforeach()
    string(APPEND script
      "add_test([==[${label}: ${name}]==] [==[${EXECUTABLE}]==] [==[${spec}]==])\n"
      "set_tests_properties([==[${label}: ${name}]==] PROPERTIES LABELS ${label} "
      "WORKING_DIRECTORY [==[${WORKING_DIR}]==] SKIP_REGULAR_EXPRESSION PRESSO-SKIP: "
      "${environment})\n")
  endforeach()
endforeach()
file(WRITE "${OUTPUT}" "${script}")

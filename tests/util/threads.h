#ifndef GRADFLOW_TESTS_UTIL_THREADS_H_
#define GRADFLOW_TESTS_UTIL_THREADS_H_

// For the tests that a result does not depend on the number of OpenMP
// threads: run the same computation on 1 thread and on 2, and compare.

#include <omp.h>

namespace gradflow::testing_util {

// Returns f() computed with OpenMP limited to `threads` threads; the limit
// before the call is restored after it.
template <typename F>
auto WithThreads(int threads, F&& f) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto result = f();
  omp_set_num_threads(saved);
  return result;
}

}  // namespace gradflow::testing_util

#endif  // GRADFLOW_TESTS_UTIL_THREADS_H_

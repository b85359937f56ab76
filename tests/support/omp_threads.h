// OpenMP's thread count for a scope, put back at its end (also when an
// assertion throws out of it), for tests that compare thread counts.
#pragma once
#include <omp.h>

namespace sagan::testing {

class OmpThreads {
 public:
  explicit OmpThreads(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
};

}  // namespace sagan::testing

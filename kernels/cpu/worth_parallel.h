#pragma once
#include <cstdint>

namespace sagan::cpu {

// Whether a loop over n elements pays for forking OpenMP threads: below
// this, the fork and join (a few microseconds on 2 cores) costs more than
// the split saves. One threshold for the elementwise, copy, index, pool,
// normalisation, softmax and reduction kernels, so that changing it is one
// edit; the Winograd transforms and bf16 operand rounding keep their own.
inline bool worth_parallel(int64_t n) { return n >= 32768; }

}  // namespace sagan::cpu

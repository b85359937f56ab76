// One element converted between the engine's dtypes (float, double, int64),
// as copy and fill do on both backends. Float to int64 is defined here,
// where C++ leaves it undefined: NaN gives 0, a value beyond int64's range
// the nearest end, the rest truncate toward zero (static_cast's rule). The
// GPU's conversion instruction (cvt.rzi.s64.f32/f64) gives the same for
// every input, so both backends agree bit for bit.
#pragma once
#include <cstdint>
#include <limits>
#include <type_traits>

#include "sagan/kernels/host_device.h"

namespace sagan {

template <class D, class S>
SAGAN_HD D convert_value(S v) {
  if constexpr (std::is_same_v<D, int64_t> && std::is_floating_point_v<S>) {
    if (v != v) return 0;
    if (v >= static_cast<S>(0x1p63)) return std::numeric_limits<int64_t>::max();
    if (v < static_cast<S>(-0x1p63)) return std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(v);
  } else {
    return static_cast<D>(v);
  }
}

}  // namespace sagan

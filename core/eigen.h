// Eigen for the .cpp files that compute with it (the CPU kernels, the
// quality metrics): <Eigen/Dense>, after turning off GCC's
// -Wmaybe-uninitialized for the rest of the including file. GCC 12 flags
// Eigen's AVX-512 packet code (_mm512_undefined_* placeholders, after
// inlining) when built with -march=native: a known false positive (GCC bug
// 105593). Include it from .cpp files only, before any other Eigen header.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Dense>

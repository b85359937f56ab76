// kernels/cpu/transpose_blocks.h against an index loop: whole 16x16 blocks
// (the vector paths), ragged edges (the scalar loop) and float64. This file
// is compiled three times (tests/CMakeLists.txt): with the suite's flags
// (no -march: the scalar loop), and as test_transpose_blocks_avx2 and
// _avx512 with those instruction sets, so that each vector transpose is
// checked on every machine whose CPU has it, whatever -march=native picked
// for the engine.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "sagan/kernels/cpu/transpose_blocks.h"

#if defined(SAGAN_TRANSPOSE_TEST_ISA)
#define TRANSPOSE_TEST_NAME "transpose_blocks (" SAGAN_TRANSPOSE_TEST_ISA " build): "
#else
#define TRANSPOSE_TEST_NAME "transpose_blocks: "
#endif

namespace {

template <class T>
void check_transpose(int64_t rows, int64_t cols) {
  std::vector<T> src(static_cast<size_t>(rows * cols)), dst(static_cast<size_t>(rows * cols) + 3, T(-7));
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<T>(i) * T(0.5) + T(1);
  sagan::cpu::transpose(src.data(), rows, cols, dst.data());
  int64_t wrong = 0, first = -1;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      if (dst[static_cast<size_t>(c * rows + r)] != src[static_cast<size_t>(r * cols + c)]) {
        if (first < 0) first = r * cols + c;
        ++wrong;
      }
  INFO("rows " << rows << " cols " << cols << ": first wrong element of src at " << first);
  CHECK(wrong == 0);
  for (size_t i = static_cast<size_t>(rows * cols); i < dst.size(); ++i)
    REQUIRE(dst[i] == T(-7));  // nothing past the end
}

}  // namespace

TEST_CASE(TRANSPOSE_TEST_NAME "whole blocks, ragged edges, float and double", "[transpose_blocks]") {
#if defined(SAGAN_TRANSPOSE_TEST_ISA)
  if (!__builtin_cpu_supports(SAGAN_TRANSPOSE_TEST_ISA)) {
    WARN("this CPU has no " SAGAN_TRANSPOSE_TEST_ISA ": its transpose is not checked here");
    return;
  }
#endif
  for (int64_t rows : {1, 7, 16, 17, 32, 40, 64})
    for (int64_t cols : {1, 9, 16, 31, 48, 1024}) {
      check_transpose<float>(rows, cols);
      check_transpose<double>(rows, cols);
    }
}

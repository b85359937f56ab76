// SAGAN_ASAN: defined when this translation unit is built with
// AddressSanitizer (GCC says so with __SANITIZE_ADDRESS__, Clang through
// __has_feature), with ASan's interface (manual poisoning, fiber switches)
// included. The CPU allocator poisons its cached blocks under it; the CUDA
// emulator announces its fiber stacks.
#pragma once
#if defined(__SANITIZE_ADDRESS__)
#define SAGAN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAGAN_ASAN 1
#endif
#endif
#if defined(SAGAN_ASAN)
#include <sanitizer/asan_interface.h>
#endif

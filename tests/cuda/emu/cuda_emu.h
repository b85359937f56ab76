// A small single-threaded CUDA emulator, so that the logic of the fused
// kernels (tiling, masks, online softmax, reductions, shuffles) is checked on
// machines without a GPU, CI included. It runs each CUDA thread of a block as
// a fiber (ucontext) on one OS thread and switches fibers only at
// __syncthreads, __syncwarp and shuffles, so shared memory, barriers and
// warp shuffles behave as on the GPU for race-free code; two schedules
// (Schedule, below) put races in view. Blocks run one after another. It is
// not a timing model and knows nothing of memory coalescing.
//
// Supported subset (what kernels/cuda/*_kernels.cuh use): threadIdx,
// blockIdx, blockDim, gridDim, __syncthreads, __syncwarp, __shfl_xor_sync,
// __shfl_sync, atomicAdd(float*, double*, unsigned*), __trap, __threadfence, static __shared__ (as function statics,
// valid because blocks run one at a time), dynamic shared memory through
// SAGAN_DYNAMIC_SMEM, float4, dim3, the <cmath> float functions, and (in
// cuda_emu_mma.h) the warp-collective mma.sync / ldmatrix instructions and
// cp.async that kernels/cuda/warp_mma.cuh and fused_common.cuh wrap.
// A barrier reached by only part of a block, or a warp shuffle reached by
// only part of a warp, is reported as an error instead of hanging.
#pragma once
#include <ucontext.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "sagan/core/reduced_precision.h"

#define SAGAN_CUDA_EMU 1

// Under AddressSanitizer every stack switch is announced
// (__sanitizer_start/finish_switch_fiber, so that exceptions thrown on a
// fiber stack unwind correctly), and a fiber stack reused by a later block,
// whose frames the finished fiber never unwound, is unpoisoned first.
#include "sagan/core/asan.h"

// ---- the language surface ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __grid_constant__
#define __shared__ static
#define SAGAN_DYNAMIC_SMEM(T, name) T* name = reinterpret_cast<T*>(::cuda_emu::dynamic_smem())

// The emulated types live in their own namespace so that they cannot clash
// (ODR) with CUDA's ::float4 / ::dim3 in another translation unit of a test
// binary; the using-directive below makes kernel code see them unqualified.
namespace cuda_emu_lang {
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
}  // namespace cuda_emu_lang
using namespace cuda_emu_lang;

namespace cuda_emu {

constexpr int kWarp = 32;

// ---- fiber contexts ----
// On x86-64 a few instructions switch stacks (swapcontext costs two system
// calls per switch, and a kernel's shuffles switch often); elsewhere
// ucontext does.
#if defined(__x86_64__) && !defined(CUDA_EMU_UCONTEXT)
extern "C" void cuda_emu_switch(void** save_sp, void* new_sp);
// Saves the callee-saved registers, MXCSR and the x87 control word on the
// current stack, stores the stack pointer in *save_sp, and resumes the
// context saved at new_sp. Weak: every test file that includes this header
// emits it.
asm(R"(
  .pushsection .text
  .weak cuda_emu_switch
  .type cuda_emu_switch, @function
cuda_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuda_emu_switch, .-cuda_emu_switch
  .popsection
)");

struct Context {
  void* sp = nullptr;
};

// A new context that starts in entry() (which must never return) with the
// stack aligned as after a call.
inline void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  auto top = reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15);
  auto* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = 0;                                            // entry's return address: never used
  *--sp = reinterpret_cast<uint64_t>(entry);            // where the first switch returns to
  for (int r = 0; r < 6; ++r) *--sp = 0;                // rbp rbx r12 r13 r14 r15
  *--sp = uint64_t(0x1F80) | (uint64_t(0x037F) << 32);  // default MXCSR, x87 control word
  c.sp = sp;
}
inline void switch_context(Context& from, const Context& to) { cuda_emu_switch(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc{};
};
inline void make_context(Context& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

enum class Wait { Run, Block, Warp, Done };

// How threads are interleaved between block barriers, and when cp.async
// copies land (cuda_emu_mma.h). Neither is what a GPU does; each is one end
// of what it may do, so a race shows in one or the other:
// - Lockstep (the default): every warp of the block reaches a warp
//   collective before any goes past it, and copies land at the wait that
//   covers them: a read before its wait sees stale bytes.
// - RunAhead: each warp runs as far as it can (to a __syncthreads) before
//   the next warp starts, and copies land at issue: a warp that prefetches
//   into a buffer other warps have yet to read, with no barrier between,
//   overwrites it first.
// Passes alternate the order of warps (and of lanes) in both.
enum class Schedule { Lockstep, RunAhead };
// The default comes from CUDA_EMU_SCHEDULE (lockstep or run-ahead): CTest
// runs the emulated tests once in each (tests/CMakeLists.txt).
inline Schedule& schedule() {
  static Schedule mode = [] {
    const char* v = std::getenv("CUDA_EMU_SCHEDULE");
    if (v == nullptr || v[0] == '\0' || std::strcmp(v, "lockstep") == 0) return Schedule::Lockstep;
    if (std::strcmp(v, "run-ahead") == 0) return Schedule::RunAhead;
    throw std::runtime_error(std::string("cuda_emu: CUDA_EMU_SCHEDULE=") + v + ": expected lockstep or run-ahead");
  }();
  return mode;
}
// Sets the schedule for a scope.
class ScheduleScope {
 public:
  explicit ScheduleScope(Schedule mode) : prev_(schedule()) { schedule() = mode; }
  ~ScheduleScope() { schedule() = prev_; }
  ScheduleScope(const ScheduleScope&) = delete;
  ScheduleScope& operator=(const ScheduleScope&) = delete;

 private:
  Schedule prev_;
};
inline const char* schedule_name(Schedule mode) { return mode == Schedule::Lockstep ? "lockstep" : "run-ahead"; }

struct Fiber {
  Context ctx;
  Wait wait = Wait::Run;
  uint3 tid;
};

struct Scheduler {
  Context main;
  const void* main_stack_bottom = nullptr;  // for AddressSanitizer's switch annotations
  size_t main_stack_size = 0;
  std::vector<Fiber> fibers;
  std::vector<char*> stacks;
  std::vector<unsigned char> dyn_smem;
  size_t dyn_smem_bytes = 0;   // as launched (dyn_smem has 16 spare bytes)
  std::vector<uint64_t> shfl;  // one slot per thread
  // Warp-collective instructions (cuda_emu_mma.h): two alternating sets of
  // per-thread deposit slots, the opcode each lane deposited, and each
  // thread's count of collectives so far (its parity picks the set).
  static constexpr int kCollWords = 12;
  std::vector<uint32_t> coll_words;  // [2][nthreads][kCollWords]
  std::vector<uint32_t> coll_op;     // [2][nthreads]
  std::vector<uint32_t> coll_count;  // [nthreads]
  // cp.async copies issued and not yet completed by a wait, per thread
  // (cuda_emu_mma.h); group -1 until committed.
  struct PendingCopy {
    void* dst;
    const void* src;
    int cp_size, src_size, group;
  };
  std::vector<std::vector<PendingCopy>> copies;  // [nthreads]
  std::vector<int> groups_committed;             // [nthreads]
  std::function<void()> body;
  int current = -1;
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
  std::string error;
  static constexpr size_t kStack = 256 * 1024;

  ~Scheduler() {
    for (char* s : stacks) std::free(s);
  }
};

inline Scheduler& sched() {
  static Scheduler s;
  return s;
}

inline void* dynamic_smem() { return sched().dyn_smem.data(); }

// The scheduler's switch into fiber t and a fiber's switch back (for good
// when `done`), with AddressSanitizer told which stack runs next.
inline void switch_to_fiber(int t) {
  Scheduler& s = sched();
#if defined(SAGAN_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, s.stacks[t], Scheduler::kStack);
#endif
  switch_context(s.main, s.fibers[t].ctx);
#if defined(SAGAN_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

inline void switch_to_main(Fiber& f, bool done) {
  Scheduler& s = sched();
#if defined(SAGAN_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(done ? nullptr : &fake, s.main_stack_bottom, s.main_stack_size);
#else
  (void)done;
#endif
  switch_context(f.ctx, s.main);
#if defined(SAGAN_ASAN)
  __sanitizer_finish_switch_fiber(fake, &s.main_stack_bottom, &s.main_stack_size);
#endif
}

// Runs the kernel body as one thread, then parks for good: a finished fiber
// is never resumed, and its stack is reused by the next block.
inline void fiber_entry() {
  Scheduler& s = sched();
#if defined(SAGAN_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &s.main_stack_bottom, &s.main_stack_size);
#endif
  try {
    s.body();
  } catch (const std::exception& e) {
    if (s.error.empty()) s.error = e.what();
  } catch (...) {
    if (s.error.empty()) s.error = "cuda_emu: unknown exception in a kernel";
  }
  Fiber& f = s.fibers[s.current];
  f.wait = Wait::Done;
  switch_to_main(f, true);
  std::abort();  // unreachable
}

inline void yield(Wait w) {
  Scheduler& s = sched();
  Fiber& f = s.fibers[s.current];
  f.wait = w;
  switch_to_main(f, false);
}

inline void run_block(int nthreads) {
  Scheduler& s = sched();
  if (nthreads % kWarp != 0) throw std::runtime_error("cuda_emu: block size must be a multiple of 32");
  s.fibers.assign(nthreads, Fiber{});
  while (static_cast<int>(s.stacks.size()) < nthreads) {
    char* st = static_cast<char*>(std::malloc(Scheduler::kStack));
    if (!st) throw std::runtime_error("cuda_emu: out of memory for fiber stacks");
    s.stacks.push_back(st);
  }
  for (int t = 0; t < nthreads; ++t) {
    Fiber& f = s.fibers[t];
    f.tid = {static_cast<unsigned>(t % s.block_dim.x), static_cast<unsigned>((t / s.block_dim.x) % s.block_dim.y),
             static_cast<unsigned>(t / (s.block_dim.x * s.block_dim.y))};
#if defined(SAGAN_ASAN)
    __asan_unpoison_memory_region(s.stacks[t], Scheduler::kStack);
#endif
    make_context(f.ctx, s.stacks[t], Scheduler::kStack, &fiber_entry);
  }
  s.shfl.assign(nthreads, 0);
  s.coll_words.assign(size_t(2) * nthreads * Scheduler::kCollWords, 0);
  s.coll_op.assign(size_t(2) * nthreads, 0);
  s.coll_count.assign(nthreads, 0);
  s.copies.assign(nthreads, {});
  s.groups_committed.assign(nthreads, 0);
  const int nwarps = nthreads / kWarp;
  auto run_thread = [&](int t) {
    Fiber& f = s.fibers[t];
    if (f.wait != Wait::Run) return;
    s.current = t;
    s.thread_idx = f.tid;
    switch_to_fiber(t);
  };
  for (int pass = 0;; ++pass) {
    // Alternate the order in which threads run between barriers, so that a
    // missing barrier shows whichever side of it runs first on the GPU.
    const bool forward = pass % 2 == 0;
    if (schedule() == Schedule::RunAhead) {
      for (int k = 0; k < nwarps; ++k) {
        const int w = forward ? k : nwarps - 1 - k;
        for (;;) {  // this warp on, through its collectives, to a barrier or its end
          for (int l = 0; l < kWarp; ++l) run_thread(w * kWarp + (forward ? l : kWarp - 1 - l));
          if (!s.error.empty()) return;
          int at_warp = 0;
          for (int l = 0; l < kWarp; ++l) at_warp += s.fibers[w * kWarp + l].wait == Wait::Warp;
          if (at_warp != kWarp) break;  // partial collectives are reported below
          for (int l = 0; l < kWarp; ++l) s.fibers[w * kWarp + l].wait = Wait::Run;
        }
      }
    } else {
      for (int n = 0; n < nthreads; ++n) run_thread(forward ? n : nthreads - 1 - n);
    }
    if (!s.error.empty()) return;
    int done = 0, at_block = 0;
    for (const Fiber& f : s.fibers) {
      done += f.wait == Wait::Done;
      at_block += f.wait == Wait::Block;
    }
    if (done == nthreads) return;
    bool released = false;
    for (int w = 0; w < nwarps; ++w) {
      int at_warp = 0, lanes_done = 0;
      for (int l = 0; l < kWarp; ++l) {
        at_warp += s.fibers[w * kWarp + l].wait == Wait::Warp;
        lanes_done += s.fibers[w * kWarp + l].wait == Wait::Done;
      }
      if (at_warp == 0) continue;
      if (at_warp + lanes_done == kWarp && lanes_done > 0) {
        s.error = "cuda_emu: warp-synchronous call reached by only part of warp " + std::to_string(w);
        return;
      }
      if (at_warp == kWarp) {
        for (int l = 0; l < kWarp; ++l) s.fibers[w * kWarp + l].wait = Wait::Run;
        released = true;
      }
    }
    if (released) continue;
    if (at_block == nthreads - done && done > 0) {
      s.error = "cuda_emu: __syncthreads reached by " + std::to_string(at_block) + " of " + std::to_string(nthreads) +
                " threads (the others exited)";
      return;
    }
    if (at_block == nthreads) {
      for (Fiber& f : s.fibers) f.wait = Wait::Run;
      continue;
    }
    s.error = "cuda_emu: deadlock (threads wait at different barriers)";
    return;
  }
}

// Runs kernel over the grid, one block at a time. Dynamic shared memory is
// filled with NaN bytes so that reads of unwritten shared memory show.
template <class... P, class... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, A&&... args) {
  Scheduler& s = sched();
  std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  s.grid_dim = grid;
  s.block_dim = block;
  s.body = [&] { std::apply(kernel, params); };
  const int nthreads = static_cast<int>(block.x * block.y * block.z);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        s.block_idx = {x, y, z};
        s.dyn_smem.assign(smem_bytes + 16, 0xFF);
        s.dyn_smem_bytes = smem_bytes;
        s.error.clear();
        run_block(nthreads);
        if (!s.error.empty())
          throw std::runtime_error(s.error + " in block (" + std::to_string(x) + "," + std::to_string(y) + "," +
                                   std::to_string(z) + ")");
      }
  s.body = nullptr;
}

inline int linear_tid() {
  const Scheduler& s = sched();
  return static_cast<int>(s.thread_idx.x + s.block_dim.x * (s.thread_idx.y + s.block_dim.y * s.thread_idx.z));
}

template <class T>
T shfl_impl(T value, int src_of_lane_xor, bool is_xor) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "cuda_emu: shuffle of a type wider than 8 bytes");
  Scheduler& s = sched();
  const int t = linear_tid();
  std::memcpy(&s.shfl[t], &value, sizeof(T));
  yield(Wait::Warp);
  const int base = t - t % kWarp;
  const int src = is_xor ? base + ((t % kWarp) ^ src_of_lane_xor) : base + (src_of_lane_xor & (kWarp - 1));
  T out;
  std::memcpy(&out, &s.shfl[src], sizeof(T));
  yield(Wait::Warp);  // nobody overwrites a slot before every lane has read
  return out;
}

// atomicAdd(float*, float) and atomicAdd(double*, double) calls since the
// program started.
inline uint64_t float_atomic_adds = 0;

}  // namespace cuda_emu

#define threadIdx (::cuda_emu::sched().thread_idx)
#define blockIdx (::cuda_emu::sched().block_idx)
#define blockDim (::cuda_emu::sched().block_dim)
#define gridDim (::cuda_emu::sched().grid_dim)
#define warpSize 32

namespace cuda_emu_lang {
inline void __syncthreads() { ::cuda_emu::yield(::cuda_emu::Wait::Block); }
inline void __syncwarp(unsigned = 0xffffffffu) { ::cuda_emu::yield(::cuda_emu::Wait::Warp); }
template <class T>
inline T __shfl_xor_sync(unsigned, T v, int lane_mask, int = 32) {
  return ::cuda_emu::shfl_impl(v, lane_mask, true);
}
template <class T>
inline T __shfl_sync(unsigned, T v, int src_lane, int = 32) {
  return ::cuda_emu::shfl_impl(v, src_lane, false);
}
// One OS thread and switches only at barriers: a plain add is atomic here,
// and memory is coherent (a fence has nothing to order). Float atomics are
// counted, so a test can show a deterministic path issues none.
inline float atomicAdd(float* p, float v) {
  ++::cuda_emu::float_atomic_adds;
  const float old = *p;
  *p = old + v;
  return old;
}
inline double atomicAdd(double* p, double v) {
  ++::cuda_emu::float_atomic_adds;
  const double old = *p;
  *p = old + v;
  return old;
}
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  const unsigned old = *p;
  *p = old + v;
  return old;
}
inline void __threadfence() {}
// A trapped kernel: the launch fails with this message (naming the block).
[[noreturn]] inline void __trap() { throw std::runtime_error("cuda_emu: __trap"); }
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
}  // namespace cuda_emu_lang

// Tensor-core instructions (mma, ldmatrix) and cp.async.
#include "tests/cuda/emu/cuda_emu_mma.h"

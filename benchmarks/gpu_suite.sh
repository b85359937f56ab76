#!/usr/bin/env bash
# The one script to run on the GPU machine (H100/H200, sm_90):
#   configure + build (Release, -DSAGAN_CUDA=ON, sm_90) into build/gpu,
#   ctest with every label (CPU suite and the CUDA parity suite), verbose,
#   the CUDA suite again with SAGAN_CUDA_ATTENTION=unfused (every test that
#   does not pick an attention path itself then runs the unfused one),
#   compute-sanitizer memcheck, racecheck and initcheck over sagan_cuda_tests,
#   every benchmark executable in build/gpu/benchmarks (bench_attention has
#   rows for both attention paths; bench_train_step runs again with
#   SAGAN_CUDA_ATTENTION=unfused),
#   the PyTorch reference scripts (benchmarks/*.py) when torch is importable.
# Every step logs to ${OUT:-./gpu_out}/<step>.log; a failing step does not stop
# the others; the end prints (and writes summary.txt) one line per step.
# Exit status: 0 when every step that ran passed, 1 otherwise.
#
# Environment knobs:
#   OUT                where logs go (default ./gpu_out)
#   BUILD_DIR          build tree (default <repo>/build/gpu)
#   JOBS               build parallelism (default: nproc)
#   CUDA_ARCH          CMAKE_CUDA_ARCHITECTURES (default 90)
#   SANITIZE_FILTER    Catch2 test spec for the memcheck/initcheck runs (default: all but the
#                      full-size [*_sagan] cases, which run in the unsanitised steps)
#   RACECHECK_FILTER   test spec for racecheck (default: the kernels with shared memory)
#   STEP_TIMEOUT       seconds per step (default 3600)
#   SKIP_SANITIZERS=1, SKIP_BENCHMARKS=1, SKIP_TORCH=1   leave those steps out
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-./gpu_out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/gpu}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
CUDA_ARCH=${CUDA_ARCH:-90}
STEP_TIMEOUT=${STEP_TIMEOUT:-3600}
SANITIZE_FILTER=${SANITIZE_FILTER-"~[flash_attention_sagan]~[sn_batched_sagan]~[attention_sagan]~[spectral_norm_sagan]~[flash_attention_tc_sagan]~[attention_tc_sagan]"}
RACECHECK_FILTER=${RACECHECK_FILTER:-[reduce],[batch_norm],[attention],[spectral_norm],[optim],[sn_batched],[flash_attention],[flash_attention_tc],[attention_tc],[warp_mma]}
SANITIZE_ARGS=()
[[ -n "$SANITIZE_FILTER" ]] && SANITIZE_ARGS=("$SANITIZE_FILTER")

export PATH="/usr/local/cuda/bin:$PATH"

SUMMARY=()
FAILED=0

# step NAME CMD...: runs CMD with a timeout, output to $OUT/NAME.log.
step() {
  local name=$1
  shift
  local log="$OUT/$name.log" start end rc status
  echo "==> $name: $*"
  start=$(date +%s)
  {
    echo "# $*"
    echo "# started $(date -u +%FT%TZ) in $PWD"
  } >"$log"
  timeout --kill-after=30 "$STEP_TIMEOUT" "$@" >>"$log" 2>&1
  rc=$?
  end=$(date +%s)
  case $rc in
    0) status=PASS ;;
    124 | 137) status="FAIL (timeout after ${STEP_TIMEOUT}s)" ;;
    *) status="FAIL (exit $rc)" ;;
  esac
  [[ $rc -ne 0 ]] && FAILED=1
  echo "# exit $rc after $((end - start)) s" >>"$log"
  echo "    $status, $((end - start)) s, log $log"
  SUMMARY+=("$(printf '%-34s %-28s %6ss  %s' "$name" "$status" "$((end - start))" "$log")")
  return $rc
}

skip() {
  echo "==> $1: skipped ($2)"
  SUMMARY+=("$(printf '%-34s %-28s %6s   %s' "$1" "SKIP" "-" "$2")")
}

# ---------------------------------------------------------------- environment
env_report() {
  echo "host: $(hostname)"
  echo "repo: $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
  git -C "$ROOT" status --short 2>/dev/null | head -50
  nvidia-smi || echo "nvidia-smi not available"
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version,clocks.max.sm --format=csv || true
  nvcc --version || echo "nvcc not on PATH"
  cmake --version | head -1
  g++ --version | head -1
  command -v compute-sanitizer || echo "compute-sanitizer not on PATH"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' ||
    echo "torch not importable"
}
echo "==> env"
env_report >"$OUT/env.log" 2>&1
echo "    written to $OUT/env.log"

if command -v nvidia-smi >/dev/null 2>&1; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  if [[ -n "$cap" && "$cap" != "$CUDA_ARCH" ]]; then
    echo "warning: GPU compute capability $cap, building for sm_$CUDA_ARCH (PTX JIT will be used if newer)"
  fi
fi

# ---------------------------------------------------------------- build
step configure cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSAGAN_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DSAGAN_BUILD_TESTS=ON -DSAGAN_BUILD_BENCHMARKS=ON -DSAGAN_BUILD_TOOLS=ON
# -k: build whatever compiles, so one broken tool does not hide the test results.
step build cmake --build "$BUILD_DIR" -j "$JOBS" -- -k
# The warnings of the CUDA sources (they build with -Werror for CUDA).
grep -n "warning" "$OUT/build.log" >"$OUT/build_warnings.txt" 2>/dev/null || true

CUDA_TESTS="$BUILD_DIR/tests/cuda/sagan_cuda_tests"

# ---------------------------------------------------------------- tests
if [[ -f "$BUILD_DIR/CTestTestfile.cmake" ]]; then
  step ctest_all ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 1800 \
    --output-junit "$OUT/ctest_all.xml"
  step ctest_cuda_verbose ctest --test-dir "$BUILD_DIR" -L cuda -V --timeout 1800
else
  skip ctest_all "no build tree"
fi

if [[ -x "$CUDA_TESTS" ]]; then
  # Every test case with its duration, and a JUnit report.
  step cuda_tests_durations "$CUDA_TESTS" --durations yes
  step cuda_tests_junit "$CUDA_TESTS" -r junit -o "$OUT/cuda_tests.xml"
  # The same suite with a synchronising launch check: a failing kernel is
  # reported by the op that launched it.
  step cuda_tests_sync env SAGAN_CUDA_SYNC=1 "$CUDA_TESTS"
  # The unfused attention path as the process default: tests that do not
  # choose a path themselves (autograd through the op front ends) go
  # through it too.
  step cuda_tests_unfused env SAGAN_CUDA_ATTENTION=unfused "$CUDA_TESTS"
else
  skip cuda_tests "sagan_cuda_tests was not built"
fi

# ---------------------------------------------------------------- sanitizers
if [[ "${SKIP_SANITIZERS:-0}" == 1 ]]; then
  skip sanitizers "SKIP_SANITIZERS=1"
elif ! command -v compute-sanitizer >/dev/null 2>&1; then
  skip sanitizers "compute-sanitizer not found"
elif [[ ! -x "$CUDA_TESTS" ]]; then
  skip sanitizers "sagan_cuda_tests was not built"
else
  # The backend caches device memory and library handles until exit by
  # design, so leak checking would only report the cache.
  export SAGAN_CUDA_SYNC=1
  step memcheck compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 100 \
    "$CUDA_TESTS" ${SANITIZE_ARGS[@]+"${SANITIZE_ARGS[@]}"}
  step racecheck compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 99 --print-limit 100 \
    "$CUDA_TESTS" "$RACECHECK_FILTER"
  step initcheck compute-sanitizer --tool initcheck --error-exitcode 99 --print-limit 100 \
    "$CUDA_TESTS" ${SANITIZE_ARGS[@]+"${SANITIZE_ARGS[@]}"}
  step synccheck compute-sanitizer --tool synccheck --error-exitcode 99 --print-limit 100 \
    "$CUDA_TESTS" "$RACECHECK_FILTER"
  unset SAGAN_CUDA_SYNC
fi

# ---------------------------------------------------------------- benchmarks
if [[ "${SKIP_BENCHMARKS:-0}" == 1 ]]; then
  skip benchmarks "SKIP_BENCHMARKS=1"
else
  found=0
  if [[ -d "$BUILD_DIR/benchmarks" ]]; then
    while IFS= read -r exe; do
      found=1
      name=$(basename "$exe")
      step "bench_${name#bench_}" "$exe"
      # A whole training step with the other attention path (the default
      # run above uses the fused one).
      [[ $name == bench_train_step ]] && step bench_train_step_unfused env SAGAN_CUDA_ATTENTION=unfused "$exe"
    done < <(find "$BUILD_DIR/benchmarks" -maxdepth 1 -type f -executable | sort)
  fi
  [[ $found == 0 ]] && skip benchmarks "no executables in $BUILD_DIR/benchmarks"
fi

if [[ "${SKIP_TORCH:-0}" == 1 ]]; then
  skip torch "SKIP_TORCH=1"
elif ! python3 -c 'import torch' >/dev/null 2>&1; then
  skip torch "python3 cannot import torch"
else
  found=0
  for py in "$ROOT"/benchmarks/*.py; do
    [[ -f "$py" ]] || continue
    found=1
    step "torch_$(basename "$py" .py)" python3 "$py"
  done
  [[ $found == 0 ]] && skip torch "no benchmarks/*.py"
fi

# ---------------------------------------------------------------- summary
{
  echo "sagan GPU suite, $(date -u +%FT%TZ), logs in $OUT"
  printf '%-34s %-28s %7s  %s\n' step status time log
  for line in "${SUMMARY[@]}"; do echo "$line"; done
  if [[ $FAILED == 0 ]]; then echo "ALL STEPS THAT RAN PASSED"; else echo "SOME STEPS FAILED"; fi
} | tee "$OUT/summary.txt"
exit $FAILED

#!/usr/bin/env bash
# The device run: one call on a lent GPU (an H100 or an H200: sm_90 either
# way; docs/cuda.md, "Device run"), with the bundle made here by
# make_bundle.sh carried along:
#   run: {command: "bash benchmarks/device/run_device.sh", carry: ["device_bundle"], timeout_s: 600}
# Each step is its own process with its own timeout (an illegal address in one
# does not poison the rest), in order of value, inside one time budget, so
# that the budget cuts what matters least:
#   env            GPU, driver, clocks, versions, loader paths, ldd, cuDNN compiled vs loaded
#   build          only when the carried binaries cannot run there or were built
#                  from other sources: build_on_device.sh (ninja, carried headers)
#   fused_sync     [warp_mma],[flash_attention],[sn_batched],[flash_attention_tc] with CUDA_LAUNCH_BLOCKING=1
#   fused_full     [flash_attention_sagan],[sn_batched_sagan],[flash_attention_tc_sagan] (SAGAN sizes)
#   ops_fused      the attention and spectral-norm op tests (SAGAN_CUDA_ATTENTION=fused)
#   ops_unfused    the attention op's registry parity through the unfused path
#   others         every other CUDA test group
#   train_cuda, train_nccl   sagan-train SAGAN-32 on the bundle's Fashion-MNIST
#                  subset: 300 steps on cuda, 20 as a one-rank NCCL job
#                  (--comm nccl), same seed
#   memcheck, racecheck   compute-sanitizer on the fused tests (less two large repeats)
#   bench_attention, torch_attention, bench_spectral_norm, torch_spectral_norm,
#   bench_train_step, torch_train_step   the benchmarks at batch 64 and their
#                  PyTorch references
#   bench_train_step_nondet   --no-deterministic, PyTorch's default mode:
#                  torch_train_step's like-for-like pair
#   train_cpu      the first 5 steps of train_cuda on the CPU, its reference
#   bench_train_step_graph, train_step_profile (the step's GPU time per kernel),
#   torch_compile, bench_train_step_bf16, torch_train_step_bf16,
#   bench_inception, torch_inception   detail, if time is left
# A step that would start with under 15 s of budget left is skipped as such;
# one the budget cut short is CUT (not a failure), one that reached its own
# limit TIMEOUT.
# $OUT gets at most 7 files: summary.txt env.txt tests.log sanitizer.log
# bench.txt train.txt, and build.log when the fallback build ran. Steps write
# into them as they run and summary.txt is rewritten before and after each
# step, so a call killed from outside returns what was done. The end of
# stdout is the summary: condensed benchmark rows, the sanitizers' first
# errors (kernel, file:line, block, thread), the first failures with
# Catch2's expansions, then one line per step (status, exit code, seconds,
# test totals) and the result, last, where output_tail keeps them.
# Without a GPU (a dry run here) every step still runs: the CUDA tests exit 77
# (skip), the benchmarks say there is no GPU.
#
# Environment: OUT (default out/device), BUNDLE (device_bundle), WORK (scratch,
# /tmp/sagan_device), BUDGET_S (520: timeout_s 600 less the overrun and summary), PYTHON (python3, or /usr/bin/python3 when
# only that one imports torch),
# SAGAN_DEVICE_BUILD=auto|never|always (auto: build only when needed),
# STEPS='regex' (run only the steps whose names match, e.g. 'fused_sync|memcheck';
# env always runs). Exit status: 0 when no step failed, 1 otherwise.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
BUNDLE=${BUNDLE:-$ROOT/device_bundle}
OUT=${OUT:-$ROOT/out/device}
WORK=${WORK:-/tmp/sagan_device}
BUDGET_S=${BUDGET_S:-520}
# The device's python3 is the PyTorch venv's; here /usr/bin/python3 may be
# the one with torch.
if [[ -z ${PYTHON:-} ]]; then
  PYTHON=python3
  python3 -c 'import torch' >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || PYTHON=/usr/bin/python3
fi
BUILD_MODE=${SAGAN_DEVICE_BUILD:-auto}
STEPS=${STEPS:-}
START=$(date +%s)
DEADLINE=$((START + BUDGET_S))
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
LOGS=$WORK/logs
rm -rf "$LOGS" "$WORK/runs"
(cd "$OUT" && rm -f summary.txt env.txt tests.log sanitizer.log bench.txt train.txt build.log)
mkdir -p "$LOGS" "$WORK/runs"
export PYTHONUNBUFFERED=1
CUDA_TESTS_FUSED='[warp_mma],[flash_attention],[sn_batched],[flash_attention_tc]'
# The sanitizers' share: the same but the two bit-for-bit repeats of large
# problems (tag [slow_under_sanitizer]); fused_sync runs them.
CUDA_TESTS_SANITIZE='[warp_mma],[flash_attention]~[slow_under_sanitizer],[sn_batched]~[slow_under_sanitizer],[flash_attention_tc]'
CUDA_TESTS_FUSED_FULL='[flash_attention_sagan],[sn_batched_sagan],[flash_attention_tc_sagan]'
CUDA_TESTS_OPS='[attention],[attention_sagan],[spectral_norm],[spectral_norm_sagan],[attention_tc],[attention_tc_sagan]'
CUDA_TESTS_OTHERS='~[warp_mma]~[flash_attention]~[sn_batched]~[flash_attention_tc]~[flash_attention_sagan]~[sn_batched_sagan]~[flash_attention_tc_sagan]~[attention]~[attention_sagan]~[spectral_norm]~[spectral_norm_sagan]~[attention_tc]~[attention_tc_sagan]'

SUMMARY=()
FAILED=0
NGPU=0

elapsed() { echo $(($(date +%s) - START)); }
want() { [[ -z $STEPS || $1 =~ ^($STEPS)$ ]]; }

# Catch2's and compute-sanitizer's totals in one line, from a step's log.
totals() {
  local log=$1 t
  t=$(grep -m1 -E '^SKIPPED: ' "$log" | sed 's/^SKIPPED: //')
  [[ -n $t ]] && {
    echo "$t"
    return
  }
  t=$(grep -m1 -E '^All tests passed' "$log")
  [[ -z $t ]] && t=$(grep -E '^(test cases|assertions):' "$log" | tr -s ' ' | paste -sd ';' -)
  [[ -z $t ]] && t=$(grep -m1 -E '^No test cases matched' "$log")
  local s
  s=$(grep -E '(ERROR|RACECHECK) SUMMARY' "$log" | sed 's/^========= //' | paste -sd ';' -)
  t="${t}${t:+${s:+; }}${s}"
  # Otherwise a program's own word: "nothing to measure", or its last line
  # before the step's footer (an error message, a result row).
  if [[ -z $t ]]; then
    t=$(grep -m1 -iE 'nothing to measure|no CUDA device|sees no CUDA|0 CUDA device' "$log")
    [[ -z $t ]] && t=$(grep -v '^=====' "$log" | grep -v '^[[:space:]]*$' | tail -1)
  fi
  echo "${t:0:110}"
}

record() { # record NAME STATUS RC SECONDS NOTE
  SUMMARY+=("$(printf '%-20s %-8s %4s %5s  %s' "$1" "$2" "$3" "$4" "$5")")
}

# $OUT/summary.txt as things stand, rewritten before and after each step: a
# call killed from outside (the tool's limit can be below timeout_s when
# device time is short) still returns the steps done and names the one
# that was running. RUNNING: that step's line, when one is under way.
write_summary() { # write_summary [RUNNING]
  {
    echo "gpu: ${GPU_LINE:-none}; driver ${DRIVER:-none}"
    grep -E '^(cuda |cublas |cudnn |torch )' "$OUT/env.txt" 2>/dev/null | paste -sd';' - | sed 's/;/; /g'
    echo "binaries: $BINARIES"
    echo "total: $(elapsed) s of a ${BUDGET_S} s budget${1:+ (so far: the run did not finish)}"
  } >"$LOGS/header.txt"
  {
    printf '%s\n' ${SUMMARY[@]+"${SUMMARY[@]}"}
    [[ -n ${1:-} ]] && echo "$1"
  } >"$LOGS/steps.txt"
  "$here/summarize.sh" "$WORK" "$OUT" "$FAILED" >"$OUT/summary.txt.tmp" 2>&1 && mv "$OUT/summary.txt.tmp" "$OUT/summary.txt"
}

# step NAME OUTFILE TIMEOUT CMD...: runs CMD in its own process group with a
# timeout capped by the budget; the log goes to $OUT/OUTFILE as it is
# written (a kill from outside keeps what the step printed), and is copied
# to $LOGS/NAME.log.
step() {
  local name=$1 file=$2 limit=$3
  shift 3
  [[ $name == build ]] || want "$name" || return 0
  local now left rc secs status own_limit=$limit log=$LOGS/$name.log
  now=$(date +%s)
  left=$((DEADLINE - now))
  if ((left < 15)); then
    record "$name" SKIP - 0 "no time left in the ${BUDGET_S} s budget"
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "==> +$((now - START))s $name (limit ${limit}s): $*"
  # The output goes straight into $OUT/OUTFILE, and the step's own part is
  # copied to its log afterwards: a file, not a pipe, so that a process
  # that outlives the step (a compile worker) cannot hold the run up.
  local at
  at=$(stat -c %s "$OUT/$file" 2>/dev/null || echo 0)
  printf '===== %s: %s\n===== limit %ss, started at +%ss\n' "$name" "$*" "$limit" "$((now - START))" >>"$OUT/$file"
  write_summary "$(printf '%-20s %-8s %4s %5s  %s' "$name" RUNNING - - "started at +$((now - START)) s, limit $limit s")"
  # The subshell keeps bash's "Killed" notice (after -k) out of the output.
  (timeout -k 5 "$limit" "$@" >>"$OUT/$file" 2>&1 </dev/null) 2>/dev/null
  rc=$?
  secs=$(($(date +%s) - now))
  printf '===== %s: exit %s after %ss\n\n' "$name" "$rc" "$secs" >>"$OUT/$file"
  tail -c +$((at + 1)) "$OUT/$file" >"$log"
  case $rc in
    0) status=ok ;;
    77) status=skip ;;&
    77) ((NGPU > 0 || ${SMI_GPUS:-0} > 0)) && status=FAIL ;; # "no CUDA device" on a machine with one
    *) status=FAIL ;;
  esac
  # timeout's 124 (137 after -k) only when the limit was reached: Catch2's
  # exit code is the number of failed assertions, which may be 124 too. A
  # step the budget cut short is CUT, not a failure: its own limit was not
  # reached.
  if [[ $rc == 124 || $rc == 137 ]] && ((secs >= limit)); then
    if ((limit < own_limit)); then status=CUT; else status=TIMEOUT; fi
  fi
  # Without a GPU, a GPU-only program that says so is not a failure.
  if [[ $status == FAIL && $NGPU == 0 ]] &&
    grep -qiE 'no CUDA device|sees no CUDA|0 CUDA device|no GPU|cudaErrorNoDevice|CUDA driver version is insufficient|no CUDA-capable' "$log"; then
    status=no-gpu
  fi
  [[ $status == FAIL || $status == TIMEOUT ]] && FAILED=1
  local note
  note=$(totals "$log")
  [[ $status == CUT ]] && note="cut at the ${BUDGET_S} s budget after ${secs} s (own limit ${own_limit} s); $note"
  record "$name" "$status" "$rc" "$secs" "$note"
  echo "    $status (exit $rc, ${secs}s) $note"
  write_summary
  return 0
}

# ---------------------------------------------------------------- loader setup
# The venv's nvidia wheels (cuDNN, cuBLAS, NVRTC for cuDNN's runtime-compiled
# engines, NCCL) go on the loader path after the bundle's own libraries.
NV=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)/nvidia
[[ -d $NV ]] || NV=$(ls -d /opt/*/.venv/lib/python3*/site-packages/nvidia 2>/dev/null | head -1)
[[ -d ${NV:-/nonexistent} ]] || NV=
libdirs=()
if [[ -n $NV ]]; then
  # The sonames the binaries (CUDA 13, cuDNN 9) load: a cu12 wheel beside the
  # cu13 ones must not be picked.
  for pat in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libnvrtc.so.13 libnccl.so.2; do
    f=$(find "$NV" -name "$pat" \( -type f -o -type l \) 2>/dev/null | sort | head -1)
    [[ -n $f ]] && libdirs+=("$(dirname "$f")")
  done
fi
[[ -d /usr/local/nvidia/lib64 ]] && libdirs+=(/usr/local/nvidia/lib64)
joined=$(printf '%s\n' "${libdirs[@]}" | awk 'NF && !seen[$0]++' | paste -sd: -)
BASE_LD_PATH=${LD_LIBRARY_PATH:-}
# Python steps get the venv's libraries, not the bundle's (its libgomp,
# libstdc++ compat etc. would come first otherwise).
PY=(env "LD_LIBRARY_PATH=${joined}${BASE_LD_PATH:+${joined:+:}$BASE_LD_PATH}" "$PYTHON")
# The bundle's bin/ and lib/ travel packed (make_bundle.sh); tar's xz, or
# Python's lzma where there is no xz program.
UNPACKED=$WORK/bundle
rm -rf "$UNPACKED"
mkdir -p "$UNPACKED"
if [[ -f $BUNDLE/bin.tar.xz ]]; then
  tar -C "$UNPACKED" -xJf "$BUNDLE/bin.tar.xz" 2>/dev/null ||
    "$PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      "$BUNDLE/bin.tar.xz" "$UNPACKED" || echo "run_device: cannot unpack $BUNDLE/bin.tar.xz"
fi
set_loader() { # set_loader [compat]
  LD_LIBRARY_PATH=$UNPACKED/lib${1:+:$UNPACKED/lib/compat}${joined:+:$joined}${BASE_LD_PATH:+:$BASE_LD_PATH}
  export LD_LIBRARY_PATH
}
set_loader
BIN=$UNPACKED/bin
BINARIES="carried (bundle)"

# Can the carried binaries run here? ldd -r resolves every library and symbol
# without running them; sagan_device_info loads cuDNN's sub-libraries and
# compares versions; LD_BIND_NOW makes the test binary bind all symbols at start.
# Returns 1 when the loader fails (a build there can mend that), 2 when they
# load but fail otherwise (a device or library problem a rebuild would meet
# again: reported, not rebuilt), 0 when all is well.
loader_failed() { # loader_failed RC LOG
  [[ $1 == 127 ]] || grep -qE "error while loading shared libraries|symbol lookup error|version \`[^']*' not found|cannot open shared object" "$2"
}
probe() {
  local out ok=1
  [[ -x $BIN/sagan_device_info ]] || {
    echo "probe: $BIN/sagan_device_info missing"
    return 1
  }
  for exe in "$BIN"/*; do
    # Missing libraries and symbol versions, and undefined symbols of our own
    # objects (the CUDA libraries' internal ones are theirs to resolve).
    out=$(ldd -r "$exe" 2>&1 | grep -E "not found|undefined symbol.*\((${BIN}|${UNPACKED})")
    if [[ -n $out ]]; then
      echo "probe: $(basename "$exe"):"
      head -5 <<<"$out"
      ok=0
    fi
  done
  ((ok)) || return 1
  timeout 60 "$BIN/sagan_device_info" >"$LOGS/probe_info.txt" 2>&1
  local rc=$?
  if [[ $rc != 0 && $rc != 77 ]]; then
    echo "probe: sagan_device_info exit $rc:"
    cat "$LOGS/probe_info.txt"
    loader_failed "$rc" "$LOGS/probe_info.txt" && return 1
    return 2
  fi
  # A filter that matches nothing: every symbol bound, nothing run, exit 0
  # (77 without a GPU). Not --list-test-names-only: Catch2 2.x exits with
  # the number of tests listed.
  LD_BIND_NOW=1 timeout 60 "$BIN/sagan_cuda_tests" '[no_such_tag]' >/dev/null 2>"$LOGS/probe_list.txt"
  rc=$?
  if [[ $rc != 0 && $rc != 77 ]]; then
    echo "probe: sagan_cuda_tests '[no_such_tag]' exit $rc: $(head -3 "$LOGS/probe_list.txt")"
    loader_failed "$rc" "$LOGS/probe_list.txt" && return 1
    return 2
  fi
  return 0
}

# ---------------------------------------------------------------- env
env_report() {
  echo "date: $(date -u +%FT%TZ); host $(hostname); $(uname -srm); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  # gVisor reports kernel 4.4.0; there compute-sanitizer and ncu do not work
  # (the device library's KINDS.md), on Firecracker they do.
  echo "runtime: $([[ $(uname -r) == 4.4.0* ]] && echo "gVisor (no compute-sanitizer, no ncu counters)" || echo "not gVisor (kernel $(uname -r))")"
  echo "cpus: $(nproc); memory: $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); glibc $(ldd --version | head -1 | awk '{print $NF}')"
  echo "tree: $ROOT, source_hash $("$here/source_hash.sh" "$ROOT")"
  echo "bundle: $BUNDLE"
  [[ -f $BUNDLE/MANIFEST.txt ]] && sed 's/^/  /' "$BUNDLE/MANIFEST.txt"
  echo "--- nvidia-smi"
  if ! command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi: not available"
  else
    timeout 30 nvidia-smi 2>&1
    timeout 30 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,pstate,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.draw,power.limit,temperature.gpu --format=csv 2>&1 || true
    timeout 30 nvidia-smi -q -d CLOCK,PERFORMANCE 2>&1 | head -60
  fi
  echo "--- tools"
  echo "nvcc: $(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || echo none) $( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | grep release)"
  echo "compute-sanitizer: ${SANITIZER:-none} $([[ -n ${SANITIZER:-} ]] && "$SANITIZER" --version 2>&1 | grep -i version | head -1)"
  echo "g++: $(g++ --version 2>/dev/null | head -1); cmake: $(cmake --version 2>/dev/null | head -1); ninja: $(ninja --version 2>/dev/null)"
  echo "python: $(command -v "$PYTHON") $("$PYTHON" --version 2>&1)"
  timeout 60 "${PY[@]}" - <<'PY' 2>&1
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
          "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
except Exception as e:
    print("torch: not importable:", e)
PY
  echo "--- loader"
  echo "nvidia wheels: ${NV:-none}"
  [[ -n $NV ]] && ls "$NV" | paste -sd' ' -
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "binaries: $BINARIES ($BIN)"
  for exe in "$BIN"/*; do
    echo "ldd $(basename "$exe"):"
    ldd "$exe" 2>&1 | sed 's/^/  /'
  done
  echo "--- sagan_device_info"
  timeout 60 "$BIN/sagan_device_info" 2>&1
  echo "exit $?"
}

SANITIZER=$(command -v compute-sanitizer || true)
[[ -z $SANITIZER ]] && SANITIZER=$(ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer \
  /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -1)

echo "==> +$(elapsed)s probe: can the carried binaries run here?"
need_build=""
bundle_hash=$(sed -n 's/^source_hash: //p' "$BUNDLE/MANIFEST.txt" 2>/dev/null)
tree_hash=$("$here/source_hash.sh" "$ROOT")
probe_log=$LOGS/probe.txt
if [[ ! -x $BIN/sagan_cuda_tests ]]; then
  need_build="no bundle at $BUNDLE (make_bundle.sh; carry: [\"device_bundle\"])"
elif [[ $bundle_hash != "$tree_hash" ]]; then
  need_build="bundle built from other sources (source_hash $bundle_hash, tree $tree_hash): rebuild it here with make_bundle.sh"
else
  probe >"$probe_log" 2>&1
  prc=$?
  if ((prc == 1)) && grep -qE "(GLIBCXX|CXXABI|GCC)_[0-9.]+' not found" "$probe_log"; then
    set_loader compat
    probe >"$probe_log" 2>&1
    prc=$?
  fi
  if ((prc == 1)); then
    need_build="carried binaries cannot load: $(head -3 "$probe_log" | paste -sd' ' -)"
  elif ((prc == 2)); then # the steps will show it; a rebuild would not mend it
    BINARIES="carried (they load, but the probe failed: $(head -2 "$probe_log" | paste -sd' ' - | cut -c1-160))"
  fi
fi
[[ $BUILD_MODE == always ]] && need_build="SAGAN_DEVICE_BUILD=always"
echo "    ${need_build:-carried binaries load; versions: $(grep -E '^(cudnn|gpus)' "$LOGS/probe_info.txt" 2>/dev/null | paste -sd';' -)}"

if [[ -n $need_build && $BUILD_MODE != never ]]; then
  step build build.log 300 env JOBS="$(nproc)" "$here/build_on_device.sh" "$BUNDLE" "$WORK" "$NV"
  if [[ -x $WORK/bin/sagan_cuda_tests ]]; then
    BIN=$WORK/bin
    BINARIES="built on the device ($need_build)"
  else
    BINARIES="carried, although: $need_build (the build failed)"
  fi
elif [[ -n $need_build ]]; then
  BINARIES="carried, although: $need_build (SAGAN_DEVICE_BUILD=never)"
fi

t_env=$(date +%s)
env_report >"$OUT/env.txt" 2>&1
t_env=$(($(date +%s) - t_env))
NGPU=$(grep -m1 '^gpus:' "$OUT/env.txt" | awk '{print $2}')
NGPU=${NGPU:-0}
GPU_LINE=$(grep -m1 '^gpu 0:' "$OUT/env.txt" | cut -d' ' -f3-)
DRIVER=$(timeout 30 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
# A GPU that nvidia-smi lists but the CUDA runtime does not see would turn
# every test into a skip (exit 77): that is a failure, not a dry run.
SMI_GPUS=$(timeout 30 nvidia-smi -L 2>/dev/null | grep -c '^GPU')
env_status=ok env_note="gpus: $NGPU ${GPU_LINE:+($GPU_LINE)}"
if ((${SMI_GPUS:-0} > 0 && NGPU == 0)); then
  env_status=FAIL FAILED=1
  env_note="nvidia-smi lists $SMI_GPUS GPU(s), the CUDA runtime none: $(grep -m1 '^gpus:' "$OUT/env.txt")"
fi
# env comes first in the summary, before a fallback build.
SUMMARY=("$(printf '%-20s %-8s %4s %5s  %s' env "$env_status" - "$t_env" "$env_note")" ${SUMMARY[@]+"${SUMMARY[@]}"})

# ---------------------------------------------------------------- tests
# In order of value, so that the budget cuts the least: the tests, the
# training runs (end to end, NCCL), the sanitizers, the main benchmarks
# against PyTorch, then what only adds detail.
T=$BIN/sagan_cuda_tests
step fused_sync tests.log 90 env CUDA_LAUNCH_BLOCKING=1 SAGAN_CUDA_SYNC=1 "$T" -d yes "$CUDA_TESTS_FUSED"
step fused_full tests.log 90 "$T" -d yes "$CUDA_TESTS_FUSED_FULL"
step ops_fused tests.log 120 env SAGAN_CUDA_ATTENTION=fused "$T" -d yes "$CUDA_TESTS_OPS"
# Every other ops test pins its attention path; the registry's op parity
# follows the selection.
step ops_unfused tests.log 60 env SAGAN_CUDA_ATTENTION=unfused "$T" -d yes "cuda parity: attention"
step others tests.log 180 "$T" -d yes "$CUDA_TESTS_OTHERS"

# ---------------------------------------------------------------- training
# A training run's metrics.csv into $OUT/train.txt, right after its step
# (a call killed later still returns it).
keep_metrics() { # keep_metrics DEV
  if [[ -f $WORK/runs/$1/metrics.csv ]]; then
    {
      echo "===== metrics.csv of the $1 run"
      cat "$WORK/runs/$1/metrics.csv"
      echo
    } >>"$OUT/train.txt"
  fi
}
DATA=$BUNDLE/data/fashion-mnist
# Every step logged, so that the CPU's first steps compare one for one.
step train_cuda train.txt 120 "$BIN/sagan-train" --device cuda --data "$DATA" --steps 300 --seed 0 --log-every 1 \
  --sample-every 300 --checkpoint-every 300 --run-dir "$WORK/runs/cuda"
keep_metrics cuda
# The data-parallel code path on one GPU: a one-rank NCCL job (no MPI: the
# bootstrap is the single communicator), gradient buckets reduced by NCCL on
# its own stream. One rank averages nothing, so its losses equal train_cuda's.
step train_nccl train.txt 90 env NCCL_DEBUG=WARN "$BIN/sagan-train" --device cuda --comm nccl --data "$DATA" --steps 20 --seed 0 \
  --log-every 1 --sample-every 20 --checkpoint-every 20 --check-sync-every 5 --run-dir "$WORK/runs/nccl"
keep_metrics nccl

# ---------------------------------------------------------------- sanitizers
# compute-sanitizer does not work on every runtime (gVisor: "Device not
# supported", then error 999 at the first allocation): a short probe first,
# so that the two steps are skipped with the reason rather than failing.
SANITIZER_NOTE=""
if [[ -n $SANITIZER ]] && ((NGPU > 0)) && { want memcheck || want racecheck; }; then
  san_left=$((DEADLINE - $(date +%s)))
  san_out=$(timeout $((san_left > 120 ? 60 : 15)) "$SANITIZER" --tool memcheck --error-exitcode 99 \
    "$BIN/sagan_device_info" 2>&1)
  san_rc=$?
  if [[ $san_rc != 0 ]] || grep -qiE 'not supported|error 999' <<<"$san_out"; then
    SANITIZER_NOTE="compute-sanitizer cannot run here (probe exit $san_rc: $(grep -m1 -iE 'not supported|error' <<<"$san_out" | cut -c1-70))"
  fi
fi
if [[ -n $SANITIZER_NOTE ]]; then
  want memcheck && record memcheck skip - 0 "$SANITIZER_NOTE"
  want racecheck && record racecheck skip - 0 "$SANITIZER_NOTE"
elif [[ -n $SANITIZER ]]; then
  step memcheck sanitizer.log 90 "$SANITIZER" --tool memcheck --error-exitcode 99 --print-limit 20 \
    "$T" "$CUDA_TESTS_SANITIZE"
  step racecheck sanitizer.log 120 "$SANITIZER" --tool racecheck --racecheck-report all --error-exitcode 99 \
    --print-limit 20 "$T" "$CUDA_TESTS_SANITIZE"
else
  want memcheck && record memcheck skip - 0 "compute-sanitizer not found"
  want racecheck && record racecheck skip - 0 "compute-sanitizer not found"
fi

# ---------------------------------------------------------------- benchmarks
step bench_attention bench.txt 180 "$BIN/bench_attention" --batches 64
step torch_attention bench.txt 150 "${PY[@]}" "$ROOT/benchmarks/torch_attention.py" --batches 64
step bench_spectral_norm bench.txt 60 "$BIN/bench_spectral_norm"
step torch_spectral_norm bench.txt 60 "${PY[@]}" "$ROOT/benchmarks/torch_spectral_norm.py"
step bench_train_step bench.txt 120 "$BIN/bench_train_step" --device cuda --resolution 32 --batch 64
step torch_train_step bench.txt 120 "${PY[@]}" "$ROOT/benchmarks/torch_train_step.py" --device cuda \
  --resolution 32 --batch 64 --no-compile
# PyTorch's default mode (atomics, timed cuDNN choice) on the engine's side
# too: torch_train_step's like-for-like pair (it runs with cudnn.benchmark),
# and the cost of deterministic mode in the whole step.
step bench_train_step_nondet bench.txt 90 "$BIN/bench_train_step" --device cuda --resolution 32 --batch 64 \
  --no-deterministic

# ---------------------------------------------------------------- detail, if time is left
if [[ $NGPU == 0 ]]; then
  want train_cpu && record train_cpu skip - 0 "no GPU: the CPU run is only the cuda run's reference"
else
  # The bundle's CPU kernels are generic x86-64 (no -march=native): seconds a step.
  # --preset sagan32: the cuda run's settings (--device cpu alone takes the cpu preset).
  step train_cpu train.txt 90 "$BIN/sagan-train" --device cpu --preset sagan32 --data "$DATA" --steps 5 --seed 0 \
    --log-every 1 \
    --sample-every 5 --checkpoint-every 5 --run-dir "$WORK/runs/cpu"
  keep_metrics cpu
fi
step bench_train_step_graph bench.txt 90 "$BIN/bench_train_step" --device cuda --resolution 32 --batch 64 --cuda-graph
# Where the engine's step spends its GPU time: each kernel call timed alone
# (synchronised before and after), per iteration (core/kernel_profile.h).
step train_step_profile bench.txt 60 "$BIN/bench_train_step" --device cuda --resolution 32 --batch 64 \
  --repeats 3 --warmup 3 --profile
step torch_compile bench.txt 150 "${PY[@]}" "$ROOT/benchmarks/torch_train_step.py" --device cuda \
  --resolution 32 --batch 64 --compile-only
# The training step in bf16 (tensor cores; fp32 master weights), both sides,
# if time is left.
step bench_train_step_bf16 bench.txt 90 "$BIN/bench_train_step" --device cuda --resolution 32 --batch 64 \
  --precision bf16
step torch_train_step_bf16 bench.txt 90 "${PY[@]}" "$ROOT/benchmarks/torch_train_step.py" --device cuda \
  --resolution 32 --batch 64 --no-compile --precision bf16
# The FID network (its pools and resize on the GPU since they have kernels), both sides.
step bench_inception bench.txt 60 "$BIN/bench_inception" --device cuda --batch 50 --repeats 10
# pytorch-fid's network needs torchvision, which the venv is not sure to have.
if "${PY[@]}" -c 'import torchvision' >/dev/null 2>&1; then
  step torch_inception bench.txt 60 "${PY[@]}" "$ROOT/benchmarks/torch_inception.py" --device cuda --batch 50 \
    --repeats 10
else
  want torch_inception && record torch_inception skip - 0 "no torchvision in ${PY[*]}"
fi


# ---------------------------------------------------------------- summary
write_summary
cat "$OUT/summary.txt"
exit $FAILED

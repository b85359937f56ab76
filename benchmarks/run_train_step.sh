#!/bin/bash
# One whole SAGAN training iteration, the engine (bench_train_step) and the
# PyTorch reference (torch_train_step.py), in one run on the same machine,
# side by side with the ratio. Builds nothing: point it at a build made with
# -DSAGAN_BUILD_BENCHMARKS=ON (and -DSAGAN_CUDA=ON for --device cuda).
#
#   benchmarks/run_train_step.sh [BUILD_DIR] [OPTIONS], e.g. --device cpu --repeats 7
#
# Options go to the side(s) that take them:
#   both:           --device D  --resolution R (repeatable)  --ch C  --batch B  --classes K
#                   --repeats N  --warmup N  --precision fp32|tf32|bf16
#   engine only:    --cuda-graph  --no-deterministic          (bench_train_step)
#   PyTorch only:   --threads T  --no-compile  --compile-only  (torch_train_step.py)
# BUILD_DIR defaults to the README's build/release (taken only when the
# first argument is not an option).
#
# ratio = torch s/iter / sagan s/iter (> 1: sagan is faster), against the
# engine's row of the same config and device (the engine prints cuda:0 where
# PyTorch prints cuda: both count as cuda). With --device cuda, torch also
# runs torch.compile'd models when it is 2.x. On the CPU both use
# OMP_NUM_THREADS threads (default 2; --threads overrides it for PyTorch only).
# A side that fails still leaves the other's rows in the table; the exit
# status is then 1.
set -euo pipefail
source "$(dirname "$0")/script_args.sh"
shift "$build_args"
both=() ours_only=() theirs_only=()
while [ $# -gt 0 ]; do
  a=$1
  shift
  # --opt=value as --opt value (bench_train_step takes only the latter).
  if [[ $a == --*=* ]]; then
    set -- "${a#*=}" "$@"
    a=${a%%=*}
  fi
  case $a in
    -h | --help)
      script_usage
      exit 0
      ;;
    --device | --resolution | --ch | --batch | --classes | --repeats | --warmup | --precision | --threads)
      if [ $# -eq 0 ]; then
        echo "run_train_step.sh: $a needs a value" >&2
        exit 2
      fi
      if [ "$a" = --threads ]; then theirs_only+=("$a" "$1"); else both+=("$a" "$1"); fi
      shift
      ;;
    --cuda-graph | --no-deterministic) ours_only+=("$a") ;;
    --no-compile | --compile-only) theirs_only+=("$a") ;;
    *)
      echo "run_train_step.sh: unknown argument '$a' (--help lists them)" >&2
      exit 2
      ;;
  esac
done
bench="$build/benchmarks/bench_train_step"
if [ ! -x "$bench" ]; then
  echo "run_train_step.sh: $bench not found; configure with -DSAGAN_BUILD_BENCHMARKS=ON and build first" >&2
  exit 1
fi
py="${PYTHON:-/usr/bin/python3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ours="$(mktemp)"
theirs="$(mktemp)"
trap 'rm -f "$ours" "$theirs"' EXIT
# The table is made by python too: without one that runs, the engine's rows
# are printed raw at the end (a side that fails leaves the other's rows).
table_py=$py
"$table_py" -c '' 2>/dev/null || table_py=""
machine_line "$table_py"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name --format=csv,noheader >&2 || true
rc=0
"$bench" ${both[@]+"${both[@]}"} ${ours_only[@]+"${ours_only[@]}"} >"$ours" || {
  echo "run_train_step.sh: bench_train_step failed (exit $?)" >&2
  rc=1
}
"$py" "$here/torch_train_step.py" ${both[@]+"${both[@]}"} ${theirs_only[@]+"${theirs_only[@]}"} >"$theirs" || {
  echo "run_train_step.sh: torch_train_step.py failed (exit $?)" >&2
  rc=1
}
if [ -z "$table_py" ]; then
  echo "run_train_step.sh: $py does not run (set PYTHON); the engine's rows as measured:" >&2
  cat "$ours"
  exit 1
fi
"$table_py" - "$ours" "$theirs" <<'PY'
import sys


def load(path):
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) != 6:
            continue
        name, impl, device, med, lo, peak = f
        # The engine names the device cuda:0, PyTorch cuda (for --device cuda).
        device = device[:-2] if device.endswith(":0") else device
        rows.append((name, impl, device, float(med), float(lo), float(peak)))
    return rows


ours, theirs = load(sys.argv[1]), load(sys.argv[2])
sagan = {(r[0], r[2]): r[3] for r in ours}
print(f"| {'config':<22} | {'impl':<13} | {'device':<6} | s/iter (median) | s/iter (min) | peak MiB | torch/sagan |")
print(f"|{'-' * 24}|{'-' * 15}|{'-' * 8}|----------------:|-------------:|---------:|------------:|")
for rows, is_torch in ((ours, False), (theirs, True)):
    for name, impl, device, med, lo, peak in rows:
        ref = sagan.get((name, device))
        ratio = f"{med / ref:11.2f}" if ref and is_torch else f"{'':11}"
        print(f"| {name:<22} | {impl:<13} | {device:<6} | {med:15.3f} | {lo:12.3f} | {peak:8.0f} | {ratio} |")
PY
exit $rc

#!/bin/bash
# Runs the CPU GEMM/conv2d benchmark and its PyTorch twin at SAGAN-32's
# shapes and prints them side by side. Builds nothing: point it at a build
# made with -DSAGAN_BUILD_BENCHMARKS=ON.
#
#   benchmarks/run_cpu_ops.sh [BUILD_DIR] [extra args for both, e.g. --repeats 7 --filter conv3x3;
#                             --min --split-backward for the fastest run and each conv gradient alone]
#
# BUILD_DIR defaults to the README's build/release (taken only when the
# first argument is not an option). PYTHON names a python3 with torch
# (default /usr/bin/python3: Debian's python3-torch).
# ratio = sagan GFLOP/s / torch GFLOP/s (> 1: sagan is faster).
set -euo pipefail
source "$(dirname "$0")/script_args.sh"
shift "$build_args"
bench="$build/benchmarks/bench_cpu_ops"
if [ ! -x "$bench" ]; then
  echo "run_cpu_ops.sh: $bench not found; configure with -DSAGAN_BUILD_BENCHMARKS=ON and build first" >&2
  exit 1
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ours="$(mktemp)"
theirs="$(mktemp)"
trap 'rm -f "$ours" "$theirs"' EXIT
py="${PYTHON:-/usr/bin/python3}"  # one with torch (Debian's python3-torch by default)
check_python "$py" torch
machine_line "$py"
"$bench" "$@" >"$ours"
if [ ! -s "$ours" ]; then
  echo "run_cpu_ops.sh: bench_cpu_ops measured nothing (does --filter match a row? bench_cpu_ops --help)" >&2
  exit 1
fi
"$py" "$here/torch_cpu_ops.py" "$@" >"$theirs"
"$py" - "$ours" "$theirs" <<'PY'
import sys

def load(path):
    rows = {}
    for line in open(path):
        name, direction, ms, gflops = line.rstrip("\n").split("\t")
        rows[(name, direction)] = (float(ms), float(gflops))
    return rows

ours, theirs = load(sys.argv[1]), load(sys.argv[2])
print(f"| {'op (batch 64, float32)':<30} | dir   | sagan ms | sagan GFLOP/s | torch ms | torch GFLOP/s | ratio |")
print(f"|{'-' * 32}|-------|---------:|--------------:|---------:|--------------:|------:|")
for key, (ms, gf) in ours.items():
    tms, tgf = theirs.get(key, (float("nan"), float("nan")))
    print(f"| {key[0]:<30} | {key[1]:<5} | {ms:8.2f} | {gf:13.1f} | {tms:8.2f} | {tgf:13.1f} | {gf / tgf:5.2f} |")
PY

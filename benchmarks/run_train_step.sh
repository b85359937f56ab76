#!/bin/bash
# One whole SAGAN training iteration, the engine (bench_train_step) and the
# PyTorch reference (torch_train_step.py), in one run on the same machine,
# side by side with the ratio. Builds nothing: point it at a build made with
# -DSAGAN_BUILD_BENCHMARKS=ON (and -DSAGAN_CUDA=ON for --device cuda).
#
#   benchmarks/run_train_step.sh [BUILD_DIR] [args for both, e.g. --device cpu --repeats 7]
#
# ratio = torch s/iter / sagan s/iter (> 1: sagan is faster). With
# --device cuda, torch also runs torch.compile'd models when it is 2.x.
# On the CPU both use OMP_NUM_THREADS threads (default 2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
[ $# -gt 0 ] && shift
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
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; OMP_NUM_THREADS=$OMP_NUM_THREADS;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name --format=csv,noheader >&2 || true
"$bench" "$@" >"$ours"
"$py" "$here/torch_train_step.py" "$@" >"$theirs"
"$py" - "$ours" "$theirs" <<'PY'
import sys

def load(path):
    rows = []
    for line in open(path):
        name, impl, device, med, lo, peak = line.rstrip("\n").split("\t")
        rows.append((name, impl, device, float(med), float(lo), float(peak)))
    return rows

ours, theirs = load(sys.argv[1]), load(sys.argv[2])
sagan = {(r[0], r[2]): r[3] for r in ours}
print(f"| {'config':<22} | {'impl':<13} | {'device':<6} | s/iter (median) | s/iter (min) | peak MiB | torch/sagan |")
print(f"|{'-' * 24}|{'-' * 15}|{'-' * 8}|----------------:|-------------:|---------:|------------:|")
for name, impl, device, med, lo, peak in ours + theirs:
    ref = sagan.get((name, device))
    ratio = f"{med / ref:11.2f}" if ref and impl != "sagan" else f"{'':11}"
    print(f"| {name:<22} | {impl:<13} | {device:<6} | {med:15.3f} | {lo:12.3f} | {peak:8.0f} | {ratio} |")
PY

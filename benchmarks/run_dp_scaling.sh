#!/usr/bin/env bash
# Data-parallel scaling on the CPU (docs/distributed.md): the same run, 16
# images per rank, on 1 rank (OMP_NUM_THREADS=2) and on 2 ranks
# (OMP_NUM_THREADS=1 each) of a 2-core machine; prints images/s of each and
# the ratio. Usage: benchmarks/run_dp_scaling.sh [build dir] [steps]
# (build dir: the README's build/release by default; any build with MPI).
set -euo pipefail
build=${1:-build/release}
steps=${2:-30}
train=$build/tools/sagan-train
if [[ ! -x $train ]]; then
  echo "$0: no $train; build first (cmake --preset release && cmake --build --preset release -j2)," \
       "or name the build dir: $0 BUILD_DIR [steps]" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(--ch 16 --batch-size 16 --steps "$steps" --log-every "$steps" --sample-every 100000 --checkpoint-every 100000
        --device cpu --quiet)
t0=$(date +%s.%N)
OMP_NUM_THREADS=2 "$train" "${common[@]}" --run-dir "$work/one"
t1=$(date +%s.%N)
OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none "$train" "${common[@]}" --run-dir "$work/two"
t2=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$steps" <<'PY'
import sys
t0, t1, t2, steps = map(float, sys.argv[1:])
one, two = steps * 16 / (t1 - t0), steps * 32 / (t2 - t1)
print(f"1 rank : {t1 - t0:.1f} s, {one:.1f} images/s (global batch 16)")
print(f"2 ranks: {t2 - t1:.1f} s, {two:.1f} images/s (global batch 32)")
print(f"ratio 2 ranks / 1 rank: {two / one:.2f}")
PY

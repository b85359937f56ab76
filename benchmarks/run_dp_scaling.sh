#!/usr/bin/env bash
# Data-parallel scaling on the CPU (docs/distributed.md): the same run, 16
# images per rank, on 1 rank (OMP_NUM_THREADS=2) and on 2 ranks
# (OMP_NUM_THREADS=1 each) of a 2-core machine; prints images/s of each and
# the ratio.
#
#   benchmarks/run_dp_scaling.sh [BUILD_DIR] [STEPS]
#
# BUILD_DIR: any build with MPI, by default the README's build/release
# (found from the script's place, whatever the working directory); STEPS:
# 30 by default. Needs Open MPI's mpirun (Debian: openmpi-bin).
set -euo pipefail
source "$(dirname "$0")/script_args.sh"
shift "$build_args"
steps=${1:-30}
[[ $steps =~ ^[1-9][0-9]*$ ]] || { echo "run_dp_scaling.sh: STEPS must be a positive integer, got '$steps'" >&2; exit 2; }
train=$build/tools/sagan-train
if [[ ! -x $train ]]; then
  echo "run_dp_scaling.sh: no $train; build first (cmake --preset release && cmake --build --preset release -j2)," \
       "or name the build dir: $0 BUILD_DIR [STEPS]" >&2
  exit 1
fi
# Checked before the 1-rank run, not after it.
command -v mpirun >/dev/null || { echo "run_dp_scaling.sh: no mpirun on PATH (Debian: apt-get install openmpi-bin)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
machine_line
common=(--ch 16 --batch-size 16 --steps "$steps" --log-every "$steps" --sample-every 100000 --checkpoint-every 100000
        --device cpu --quiet)
t0=$(date +%s.%N)
OMP_NUM_THREADS=2 "$train" "${common[@]}" --run-dir "$work/one"
t1=$(date +%s.%N)
OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --bind-to none "$train" "${common[@]}" --run-dir "$work/two"
t2=$(date +%s.%N)
awk -v t0="$t0" -v t1="$t1" -v t2="$t2" -v steps="$steps" 'BEGIN {
  one = steps * 16 / (t1 - t0); two = steps * 32 / (t2 - t1)
  printf "1 rank : %.1f s, %.1f images/s (global batch 16)\n", t1 - t0, one
  printf "2 ranks: %.1f s, %.1f images/s (global batch 32)\n", t2 - t1, two
  printf "ratio 2 ranks / 1 rank: %.2f\n", two / one
}'

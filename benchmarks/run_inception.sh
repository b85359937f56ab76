#!/bin/bash
# The FID Inception-v3 forward, the engine (bench_inception) and pytorch-fid's
# network (torch_inception.py), alternated in one run on the same machine
# (shared machines drift; alternating spreads the drift over both sides),
# with the median of each side's medians and the ratio. Builds nothing: point
# it at a build with the benchmarks (and CUDA for --device cuda).
#
#   benchmarks/run_inception.sh [BUILD_DIR] [--device D] [--batch N] [--size S] [--repeats N] [--warmup N]
#                               [--rounds R]
#
# ratio = sagan images/s / torch images/s (> 1: sagan is faster). On the CPU
# both use OMP_NUM_THREADS threads (default 2). PYTHON names a python3 with
# torch and torchvision (default /usr/bin/python3: Debian's python3-torch and
# python3-torchvision).
# BUILD_DIR defaults to the README's build/release (taken only when the
# first argument is not an option).
set -euo pipefail
source "$(dirname "$0")/script_args.sh"
shift "$build_args"
rounds=3
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds | --device | --batch | --size | --repeats | --warmup) ;;
    *) echo "run_inception.sh: unknown option $1 (run_inception.sh --help)" >&2; exit 2 ;;
  esac
  [ $# -ge 2 ] || { echo "run_inception.sh: $1 needs a value" >&2; exit 2; }
  case $1 in
    --rounds) rounds=$2 ;;
    *) args+=("$1" "$2") ;;
  esac
  shift 2
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "run_inception.sh: --rounds must be a positive integer, got $rounds" >&2; exit 2; }
bench="$build/benchmarks/bench_inception"
[ -x "$bench" ] || { echo "run_inception.sh: $bench not found; build the benchmarks first" >&2; exit 1; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
py="${PYTHON:-/usr/bin/python3}"
check_python "$py" torch torchvision
machine_line "$py"
ours=() theirs=()
for ((r = 1; r <= rounds; ++r)); do
  ours+=("$("$bench" "${args[@]}" | cut -f5)")
  theirs+=("$("$py" "$here/torch_inception.py" "${args[@]}" | cut -f5)")
  echo "round $r: sagan ${ours[-1]} images/s, torch ${theirs[-1]} images/s" >&2
done
"$py" - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
ours = [float(v) for v in sys.argv[1].split()]
theirs = [float(v) for v in sys.argv[2].split()]
o, t = statistics.median(ours), statistics.median(theirs)
print(f"sagan {o:.2f} images/s, torch {t:.2f} images/s, ratio {o / t:.2f} "
      f"(medians of {len(ours)} alternated rounds)")
PY

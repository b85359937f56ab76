# Sourced by the run_*.sh scripts, with their arguments: -h/--help anywhere
# prints the calling script's header comment (up to its `set -euo`) and
# exits 0; a first argument that is not an option is the build directory
# (default: the README's build/release, found from the script's own place,
# so any working directory works). Sets `here`, `build`, and `build_args` (1
# when the build directory was given: the caller shifts it away).
here="$(cd "$(dirname "$0")" && pwd)"
script_usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}
for _arg in "$@"; do
  if [[ $_arg == -h || $_arg == --help ]]; then
    script_usage
    exit 0
  fi
done
build="$here/../build/release"
build_args=0
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
  build=$1
  build_args=1
fi

# check_python PY MODULE...: PY imports every MODULE, or the script stops
# before any benchmark runs (the engine's side would otherwise run for
# minutes and its rows be lost with the Python side's traceback).
check_python() {
  local py=$1
  shift
  local missing
  if ! missing=$("$py" -c '
import importlib, sys
for m in sys.argv[1:]:
    try:
        importlib.import_module(m)
    except Exception as e:  # ImportError, or a module that fails as it loads
        print(f"{m} ({type(e).__name__}: {e})")
        break' "$@" 2>/dev/null) || [ -n "$missing" ]; then
    echo "$(basename "$0"): $py cannot import ${missing:-python itself (not found?)}; set PYTHON to a python3 with" \
         "$* (Debian: apt-get install python3-torch python3-torchvision; docs/benchmarks.md)" >&2
    exit 1
  fi
}

# The machine, build and load a figure was measured on (stderr): the CPU's
# model with its family/model numbers and vector width (the model name alone
# does not tell Zen 3 from Zen 4), the commit of the sources, the time, the
# load, and PY's torch version when PY is given.
machine_line() {
  local py=${1:-}
  local cpu family model avx torch="" commit
  cpu=$(lscpu | sed -n 's/^Model name: *//p')
  family=$(lscpu | sed -n 's/^CPU family: *//p')
  model=$(lscpu | sed -n 's/^Model: *//p')
  avx=$(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || (grep -qw avx2 /proc/cpuinfo && echo AVX2 || echo "no AVX2"))
  # The commit of the build's sources (a worktree of an old commit for a
  # before/after table), marked -dirty when they had uncommitted changes.
  commit=$(git -C "$build" describe --always --dirty 2>/dev/null || echo "not in a git checkout")
  [ -n "$py" ] && torch="; torch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?')"
  echo "machine: $cpu (family $family model $model, $avx), $(nproc) cores; OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset};" \
       "commit $commit; $(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)$torch" >&2
}

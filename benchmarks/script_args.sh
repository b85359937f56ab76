# Sourced by the run_*.sh scripts, with their arguments: -h/--help prints
# the calling script's header comment (up to its `set -euo`) and exits 0; a
# first argument that is not an option is the build directory (default: the
# README's build/release). Sets `here`, `build`, and `build_args` (1 when
# the build directory was given: the caller shifts it away).
here="$(cd "$(dirname "$0")" && pwd)"
script_usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  script_usage
  exit 0
fi
build="$here/../build/release"
build_args=0
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
  build=$1
  build_args=1
fi

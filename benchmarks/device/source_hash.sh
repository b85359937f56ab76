#!/usr/bin/env bash
# Prints one SHA-256 over every file that goes into the device binaries (the
# CMake files and the C++/CUDA sources under core, dist, kernels, layers,
# models, tools, tests and benchmarks, .def tables included), path and
# content, in a fixed order. The bundle records it (make_bundle.sh); the
# device run compares it with the tree it was sent with, so that binaries
# built from other sources are never taken for these (run_device.sh then
# rebuilds). Works without git: the device's copy of the tree has no .git.
# --list prints the files instead; make_bundle.sh checks that every
# repository file its build read is among them.
#   benchmarks/device/source_hash.sh [--list] [REPO_ROOT]
set -euo pipefail
list=0
if [[ ${1:-} == --list ]]; then
  list=1
  shift
fi
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$root"
files() {
  {
    ls CMakeLists.txt CMakePresets.json
    find cmake core dist kernels layers models tools tests benchmarks -type f \
      \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.hpp' -o -name 'CMakeLists.txt' \
      -o -name '*.cmake' -o -name '*.in' -o -name '*.def' \) 2>/dev/null
  } | LC_ALL=C sort
}
if ((list)); then
  files
else
  files | xargs -d '\n' sha256sum | sha256sum | cut -c1-16
fi

#!/usr/bin/env bash
# Checks here, before any device time is spent, that the device run's
# fallback build (build_on_device.sh) works on a machine like the lent H200:
# in a private mount namespace, /usr is overlaid and the Debian packages the
# bundle carries in deps.tar.xz (Eigen, fmt, Catch2, nlohmann-json, CLI11,
# zlib/libpng/libjpeg headers and link names, libfmt/libpng/libjpeg runtimes)
# are deleted from the overlay, and so are the toolkit's cuDNN headers and
# libraries; cuDNN and cuBLAS are offered only the way the device offers
# them, as a pip-wheel-like folder with versioned names only
# (WORK/nvidia/cudnn/{include,lib/libcudnn*.so.9}, WORK/nvidia/cu13/lib/
# libcublas*.so.13). Then build_on_device.sh runs and the built
# sagan_device_info and sagan_cuda_tests must start (exit 0 or 77).
# Needs root, unshare and overlayfs; changes nothing outside the namespace.
#   benchmarks/device/check_fallback_build.sh [WORK]     (default /tmp/sagan_fallback)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
BUNDLE=${BUNDLE:-$ROOT/device_bundle}
WORK=${1:-/tmp/sagan_fallback}
[[ -f $BUNDLE/deps.tar.xz ]] || {
  echo "check_fallback_build: $BUNDLE/deps.tar.xz missing: run make_bundle.sh first" >&2
  exit 1
}
rm -rf "$WORK"
mkdir -p "$WORK/ov/up" "$WORK/ov/wk" "$WORK/nvidia/cudnn/lib" "$WORK/nvidia/cu13/lib"
# The wheel-like folders: hard links to the toolkit's files (they outlive
# their deletion in the overlay), versioned names only.
mkdir -p "$WORK/nvidia/cudnn/include"
cp -p "$(dirname "$(readlink -f /usr/local/cuda/include/cudnn.h)")"/cudnn*.h "$WORK/nvidia/cudnn/include/"
for f in /usr/local/cuda/lib*/libcudnn*.so.9; do
  [[ -e $WORK/nvidia/cudnn/lib/$(basename "$f") ]] || ln "$(readlink -f "$f")" "$WORK/nvidia/cudnn/lib/$(basename "$f")"
done
for f in /usr/local/cuda/lib*/libcublas.so.13 /usr/local/cuda/lib*/libcublasLt.so.13; do
  [[ -e $WORK/nvidia/cu13/lib/$(basename "$f") ]] || ln "$(readlink -f "$f")" "$WORK/nvidia/cu13/lib/$(basename "$f")"
done

packages=(libeigen3-dev libfmt-dev libfmt9 catch2 nlohmann-json3-dev libcli11-dev zlib1g-dev libpng-dev libpng16-16
  libjpeg62-turbo-dev libjpeg62-turbo)
for p in libtomlplusplus-dev libtomlplusplus3 libonnx-dev libprotobuf-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && packages+=("$p")
done
unshare -m bash -euo pipefail -c '
  WORK=$1 BUNDLE=$2 here=$3; shift 3
  mount --make-rprivate /
  mount -t overlay overlay -o lowerdir=/usr,upperdir=$WORK/ov/up,workdir=$WORK/ov/wk /usr
  for p in "$@"; do
    dpkg -L "$p" | while IFS= read -r f; do
      case $f in /usr/share/doc/*|/lib|/usr/lib) continue ;; esac
      if [[ -L $f || -f $f ]]; then rm -f "$f"; fi
    done
  done
  rm -rf /usr/include/eigen3 /usr/include/fmt /usr/include/catch2 /usr/include/nlohmann /usr/include/CLI /usr/include/toml++
  rm -f /usr/local/cuda*/lib/libcudnn* /usr/local/cuda*/include/cudnn* /usr/local/include/cudnn* /usr/local/cuda*/lib64/libcudnn*
  for h in png.h zlib.h jpeglib.h fmt/core.h catch2/catch.hpp nlohmann/json.hpp CLI/CLI.hpp eigen3/Eigen/Core cudnn.h; do
    for d in /usr/include /usr/local/include /usr/local/cuda/include; do
      [[ -e $d/$h ]] && { echo "check_fallback_build: $d/$h is still visible"; exit 1; }
    done
  done
  echo "check_fallback_build: packages hidden; building"
  CCACHE_DISABLE=1 "$here/build_on_device.sh" "$BUNDLE" "$WORK" "$WORK/nvidia"
  export LD_LIBRARY_PATH=$WORK/nvidia/cudnn/lib:$WORK/nvidia/cu13/lib:$WORK/deps/usr/lib/x86_64-linux-gnu
  for exe in sagan_device_info sagan_cuda_tests; do
    rc=0; "$WORK/bin/$exe" >"$WORK/$exe.txt" 2>&1 || rc=$?
    echo "check_fallback_build: $exe exit $rc: $(tail -1 "$WORK/$exe.txt")"
    [[ $rc == 0 || $rc == 77 ]] || exit 1
  done
  ldd "$WORK/bin/sagan_cuda_tests" | grep -E "cudnn|cublas|fmt|png|jpeg"
' check "$WORK" "$BUNDLE" "$here" "${packages[@]}"
echo "check_fallback_build: ok"

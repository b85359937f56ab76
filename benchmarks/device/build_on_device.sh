#!/usr/bin/env bash
# The device run's fallback (run_device.sh calls it when the carried binaries
# cannot run there, or were built from other sources): builds the same
# executables as make_bundle.sh from the tree's sources on a machine without
# Debian -dev packages, with ninja and every core, against
#   - the header packages, CMake package files and link libraries carried in
#     device_bundle/deps.tar.xz (unpacked into WORK/deps/usr),
#   - cuDNN and cuBLAS from the PyTorch venv's nvidia wheels, whose lib/
#     folders hold only versioned names (libcudnn.so.9, libcublas.so.13):
#     unversioned links to them go in WORK/cudalinks (CMAKE_LIBRARY_PATH), and
#     CUDNN_ROOT points at the wheel's folder (include/cudnn.h),
#   - the first nvcc found (PATH, /usr/local/cuda/bin, the venv's wheels).
# The executables are linked into WORK/bin.
#   benchmarks/device/build_on_device.sh BUNDLE WORK [NVIDIA_SITE_DIR]
# NVIDIA_SITE_DIR: the venv's site-packages/nvidia (found with python3 if not
# given; empty: use the CUDA toolkit's own cuDNN/cuBLAS). Env: JOBS (nproc).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
BUNDLE=${1:?usage: build_on_device.sh BUNDLE WORK [NVIDIA_SITE_DIR]}
WORK=${2:?usage: build_on_device.sh BUNDLE WORK [NVIDIA_SITE_DIR]}
NV=${3:-}
JOBS=${JOBS:-$(nproc)}
TARGETS=(sagan_cuda_tests bench_attention bench_spectral_norm bench_train_step bench_inception sagan-train
  sagan_device_info)
t0=$(date +%s)

nvcc=$(command -v nvcc || true)
[[ -z $nvcc && -x /usr/local/cuda/bin/nvcc ]] && nvcc=/usr/local/cuda/bin/nvcc
[[ -z $nvcc && -n $NV ]] && nvcc=$(find "$NV" -maxdepth 4 -name nvcc -type f 2>/dev/null | head -1)
[[ -n $nvcc ]] || {
  echo "build_on_device: no nvcc found (PATH, /usr/local/cuda/bin, $NV)" >&2
  exit 1
}
echo "build_on_device: nvcc $nvcc ($("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')), $(g++ --version | head -1)," \
  "$(cmake --version | head -1), ninja $(ninja --version), $JOBS jobs"

# The carried packages keep Debian's multiarch folders
# (usr/lib/x86_64-linux-gnu), which CMake searches only when it knows the
# architecture: a non-Debian compiler does not tell it.
args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DSAGAN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DSAGAN_NATIVE=OFF
  -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_LIBRARY_ARCHITECTURE=x86_64-linux-gnu)
# CMake 4 refuses package files that ask for policies older than 3.5.
cmake_major=$(cmake --version | sed -n 's/^cmake version \([0-9]*\).*/\1/p')
((${cmake_major:-3} >= 4)) && args+=(-DCMAKE_POLICY_VERSION_MINIMUM=3.5)
if [[ -f $BUNDLE/deps.tar.xz ]]; then
  rm -rf "$WORK/deps"
  mkdir -p "$WORK/deps"
  tar -C "$WORK/deps" -xJf "$BUNDLE/deps.tar.xz" 2>/dev/null ||
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$BUNDLE/deps.tar.xz" \
      "$WORK/deps"
  args+=(-DCMAKE_PREFIX_PATH="$WORK/deps/usr")
else
  echo "build_on_device: no $BUNDLE/deps.tar.xz; relying on installed packages"
fi
if [[ -n $NV ]]; then
  links=$WORK/cudalinks
  rm -rf "$links"
  mkdir -p "$links"
  # The sonames CUDA 13 and cuDNN 9 builds load (not a cu12 wheel's).
  for so in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13; do
    f=$(find "$NV" -name "$so" \( -type f -o -type l \) 2>/dev/null | sort | head -1)
    [[ -n $f ]] && ln -s "$f" "$links/${so%.so.*}.so"
  done
  # cuBLAS's headers where the toolkit lacks them (the wheel's include/).
  cublas_h=$(find "$NV" -name cublas_v2.h 2>/dev/null | head -1)
  [[ -n $cublas_h ]] && export CPATH="${CPATH:+$CPATH:}$(dirname "$cublas_h")"
  nccl_h=$(find "$NV" -name nccl.h 2>/dev/null | head -1)
  nccl_so=$(find "$NV" -name libnccl.so.2 \( -type f -o -type l \) 2>/dev/null | sort | head -1)
  [[ -n $nccl_h && -n $nccl_so ]] &&
    args+=(-DSAGAN_NCCL_INCLUDE_DIR="$(dirname "$nccl_h")" -DSAGAN_NCCL_LIBRARY="$nccl_so")
  cudnn_h=$(find "$NV" -name cudnn_version.h 2>/dev/null | head -1)
  [[ -n $cudnn_h ]] && args+=(-DCUDNN_ROOT="$(dirname "$(dirname "$cudnn_h")")")
  args+=(-DCMAKE_LIBRARY_PATH="$links")
  ls -l "$links"
fi

cmake -S "$ROOT" -B "$WORK/build" "${args[@]}"
cmake --build "$WORK/build" -j "$JOBS" --target "${TARGETS[@]}"
mkdir -p "$WORK/bin"
for t in "${TARGETS[@]}"; do
  exe=$(find "$WORK/build" -maxdepth 3 -name "$t" -type f -perm -u+x | head -1)
  [[ -n $exe ]] || {
    echo "build_on_device: $t was not built" >&2
    exit 1
  }
  ln -sf "$exe" "$WORK/bin/$t"
done
echo "build_on_device: built ${TARGETS[*]} in $(($(date +%s) - t0)) s; executables in $WORK/bin"

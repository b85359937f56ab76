#!/usr/bin/env bash
# Installs what sagan needs from Debian's packages, only what is missing.
# Usage: bash tools/setup.sh            (as root, or with sudo available)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libeigen3-dev libfmt-dev catch2 nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
      zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist libonnx-dev libprotobuf-dev
      libopenmpi-dev openmpi-bin  # data-parallel training (dist/, docs/distributed.md)
      clang-14 libclang-rt-14-dev libomp-14-dev)  # the asan preset and its libFuzzer harnesses (tests/fuzz)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup: CUDA toolkit found; the CUDA backend will be built"
else
  echo "setup: no CUDA toolkit; building the CPU backend only"
fi

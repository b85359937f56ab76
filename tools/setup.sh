#!/usr/bin/env bash
# Installs what sagan needs from Debian's packages, only what is missing.
# Usage: bash tools/setup.sh            (as root, or with sudo available)
# The package names are Debian 12's (bookworm): catch2 2.x, clang-14 for
# the asan preset. On another release the script says so and tries them.
set -euo pipefail
pkgs=(build-essential cmake ninja-build procps libeigen3-dev libfmt-dev catch2 nlohmann-json3-dev libcli11-dev
      libtomlplusplus-dev zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist libonnx-dev libprotobuf-dev
      libopenmpi-dev openmpi-bin  # data-parallel training (dist/, docs/distributed.md)
      clang-14 libclang-rt-14-dev libomp-14-dev)  # the asan preset and its libFuzzer harnesses (tests/fuzz)
release=$( (. /etc/os-release 2>/dev/null && echo "${ID:-?} ${VERSION_CODENAME:-?}") || echo "unknown")
if [[ $release != "debian bookworm" ]]; then
  echo "setup: note: the package names are Debian 12 (bookworm)'s; this is ${release}: a name apt cannot find," \
    "or a Catch2 other than 2.x, needs its counterpart here"
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "setup: not root and no sudo: run this as root, or install these packages: ${missing[*]}" >&2
      exit 1
    fi
    SUDO=(sudo)
  fi
  # sudo drops the environment (env_reset): env passes the frontend through.
  # A failed fetch is an error (apt-get exits 0 on it by default, and the
  # install would then say only "Unable to locate package").
  # A fresh machine's unattended upgrades may hold apt's locks for a while.
  if ! ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get -qq -o APT::Update::Error-Mode=any \
    -o DPkg::Lock::Timeout=300 update; then
    echo "setup: apt-get update failed (above): check the network, a proxy, /etc/apt/sources.list, or who holds" \
      "apt's lock" >&2
    exit 1
  fi
  ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${missing[@]}"
else
  echo "setup: all packages present"
fi
# What CMake's SAGAN_CUDA=AUTO will find (CMakeLists.txt): nvcc, then cuDNN.
nvcc_found=""
command -v nvcc >/dev/null 2>&1 && nvcc_found=$(command -v nvcc)
[[ -z $nvcc_found && -x /usr/local/cuda/bin/nvcc ]] && nvcc_found=/usr/local/cuda/bin/nvcc
cudnn_found=""
for h in "${CUDNN_ROOT:-/nonexistent}"/include/cudnn_version.h "$(dirname "$(dirname "${nvcc_found:-/x/x}")")"/include/cudnn_version.h \
  /usr/local/cuda/include/cudnn_version.h /usr/include/cudnn_version.h /usr/include/*/cudnn_version.h; do
  [[ -f $h ]] && cudnn_found=$h && break
done
if [[ -z $nvcc_found ]]; then
  echo "setup: no CUDA toolkit; building the CPU backend only"
elif [[ -n $cudnn_found ]]; then
  echo "setup: CUDA toolkit ($nvcc_found) and cuDNN ($cudnn_found) found; the CUDA backend will be built"
else
  echo "setup: CUDA toolkit found ($nvcc_found) but no cuDNN (cudnn_version.h): the CPU backend only will be" \
    "built; for the CUDA backend, install cuDNN 9 into the toolkit or set CUDNN_ROOT (e.g. a venv's" \
    "site-packages/nvidia/cudnn after pip install nvidia-cudnn-cu13) and configure again"
fi

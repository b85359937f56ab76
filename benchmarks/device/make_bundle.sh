#!/usr/bin/env bash
# Builds the device bundle here, for a lent H200 that has no apt, no network
# and no Debian -dev packages (docs/cuda.md, "Device run"):
#   device_bundle/bin.tar.xz   bin/ and lib/, unpacked by run_device.sh:
#     bin/  sagan_cuda_tests, bench_attention, bench_spectral_norm,
#           bench_train_step, bench_inception, sagan-train, sagan_device_info:
#           Release, sm_90,
#           no -march=native (preset `device`), stripped. Each holds the same
#           12 MB of kernel code (the static engine), so xz over all of them
#           packs 75 MB into 4.
#     lib/  the non-CUDA shared libraries they load (fmt, png, jpeg, z, gomp,
#           ...); lib/compat/ holds libstdc++ and libgcc_s, used there only if
#           the system's are too old
#   device_bundle/data/fashion-mnist/   the first 6400 training examples
#   device_bundle/deps.tar.xz   the header packages, CMake package files and link
#                           libraries of Eigen, fmt, Catch2, nlohmann-json, CLI11,
#                           zlib, libpng, libjpeg, copied from this machine's
#                           installed Debian packages (usr/ layout), for a fallback
#                           build on the device from the tree's sources
#   device_bundle/MANIFEST.txt   what was built, from which sources (source_hash.sh),
#                           cuDNN/CUDA versions compiled against, sizes
# The folder is git-ignored; a device call carries it (carry: ["device_bundle"]).
# libcuda, cuDNN and cuBLAS are not in it: they come from the device (driver,
# the PyTorch venv's nvidia wheels).
#
#   benchmarks/device/make_bundle.sh          # env: JOBS (2), BUNDLE, BUILD_DIR,
#                                             #      FMNIST_SRC, FMNIST_N (6400)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
BUNDLE=${BUNDLE:-$ROOT/device_bundle}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/device}
JOBS=${JOBS:-2}
FMNIST_SRC=${FMNIST_SRC:-/usr/share/datasets/fashion-mnist}
FMNIST_N=${FMNIST_N:-6400}
TARGETS=(sagan_cuda_tests bench_attention bench_spectral_norm bench_train_step bench_inception sagan-train
  sagan_device_info)
# Where each target's executable lands in the build tree.
declare -A TARGET_DIR=([sagan_cuda_tests]=tests/cuda [bench_attention]=benchmarks [bench_spectral_norm]=benchmarks
  [bench_train_step]=benchmarks [bench_inception]=benchmarks [sagan-train]=tools [sagan_device_info]=benchmarks)
# Debian packages whose files make up deps.tar.xz: the -dev packages the
# top-level CMakeLists.txt, tests/ and tools/ find, and the runtime packages
# their link names point into.
DEP_PACKAGES=(libeigen3-dev libfmt-dev libfmt9 catch2 nlohmann-json3-dev libcli11-dev zlib1g-dev zlib1g
  libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo)
# Carried too when installed: dependencies that newer trees find (toml++ for
# TOML config files).
for p in libtomlplusplus-dev libtomlplusplus3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && DEP_PACKAGES+=("$p")
done
# Libraries never copied to lib/: glibc's (the device has a newer glibc) and
# the CUDA libraries the device provides.
SYSTEM_LIBS='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libresolv\.so|libutil\.so|libcuda\.so|libcudnn|libcublas|libcudart|libnvrtc|libnvJitLink|libnccl)'
COMPAT_LIBS='^(libstdc\+\+\.so|libgcc_s\.so)'

say() { echo "make_bundle: $*"; }
die() {
  echo "make_bundle: $*" >&2
  exit 1
}

command -v dpkg-query >/dev/null || die "dpkg-query not found: deps.tar.xz is made from installed Debian packages"
for p in "${DEP_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    die "Debian package $p is not installed (bash tools/setup.sh installs the build's packages)"
done
[[ -f $FMNIST_SRC/train-images-idx3-ubyte.gz ]] ||
  die "$FMNIST_SRC/train-images-idx3-ubyte.gz not found (apt-get install dataset-fashion-mnist, or set FMNIST_SRC)"

t0=$(date +%s)
# ---------------------------------------------------------------- build
if [[ $BUILD_DIR == "$ROOT/build/device" ]]; then
  cmake --preset device >/dev/null
else
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSAGAN_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DSAGAN_NATIVE=OFF >/dev/null
fi
grep -q '^SAGAN_NATIVE:BOOL=OFF' "$BUILD_DIR/CMakeCache.txt" || die "$BUILD_DIR was configured with SAGAN_NATIVE=ON"
# The sources' hash before and after the build: a file changed meanwhile
# would leave binaries that match neither, under a hash of one of them.
hash=$("$here/source_hash.sh" "$ROOT")
say "building ${TARGETS[*]} in $BUILD_DIR (-j$JOBS)"
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]}"
[[ $("$here/source_hash.sh" "$ROOT") == "$hash" ]] ||
  die "sources changed during the build (source_hash $hash before, $("$here/source_hash.sh" "$ROOT") after): run again"
# Every repository file the compilers read (ninja's dependency records) must
# be in the hashed set, or a change to it would leave a stale bundle looking
# current on the device.
unhashed=$(comm -23 \
  <(cd "$BUILD_DIR" && ninja -t deps | awk '/^    /{print $1}' | sort -u | xargs -r realpath -m |
    sed -n "s#^$ROOT/##p" | grep -v '^build/' | LC_ALL=C sort -u) \
  <("$here/source_hash.sh" --list "$ROOT"))
[[ -z $unhashed ]] || die "the build read files source_hash.sh does not hash: $(paste -sd' ' - <<<"$unhashed")"
t_build=$(($(date +%s) - t0))

# ---------------------------------------------------------------- assemble
tmp=$BUNDLE.tmp
rm -rf "$tmp"
packed=$tmp/packed # becomes bin.tar.xz
mkdir -p "$packed/bin" "$packed/lib/compat" "$tmp/data"
for t in "${TARGETS[@]}"; do
  exe=$BUILD_DIR/${TARGET_DIR[$t]}/$t
  [[ -x $exe ]] || die "$exe was not built"
  strip -o "$packed/bin/$t" "$exe"
done

# Shared libraries, as this machine's loader resolves them (ldd), minus the
# device's own.
declare -A seen=()
for exe in "$packed"/bin/*; do
  out=$(ldd "$exe") || die "ldd $exe failed"
  if grep -q 'not found' <<<"$out"; then die "$exe: $(grep 'not found' <<<"$out" | head -1)"; fi
  while read -r name _ path _; do
    [[ $path == /* ]] || continue
    [[ $name =~ $SYSTEM_LIBS ]] && continue
    [[ -n ${seen[$name]:-} ]] && continue
    seen[$name]=1
    if [[ $name =~ $COMPAT_LIBS ]]; then cp -L "$path" "$packed/lib/compat/$name"; else cp -L "$path" "$packed/lib/$name"; fi
  done < <(grep '=>' <<<"$out")
done

python3 "$here/fmnist_subset.py" "$tmp/data/fashion-mnist" --n "$FMNIST_N" --src "$FMNIST_SRC" >/dev/null

# deps.tar.xz: every file of DEP_PACKAGES under usr/ (/lib/... mapped to
# usr/lib/...), documentation and programs left out; absolute symlinks made
# relative; multiarch headers (jconfig.h) also copied up to usr/include, where
# a compiler without Debian's multiarch include path finds them.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for p in "${DEP_PACKAGES[@]}"; do
  while IFS= read -r f; do
    [[ -f $f || -L $f ]] || continue
    [[ -L $f && -d $f && $f != /*/*/* ]] && continue # usrmerge's /lib -> usr/lib and the like
    rel=${f#/}
    rel=${rel#usr/}
    case $rel in share/doc/* | share/doc-base/* | share/man/* | share/lintian/* | bin/*) continue ;; esac
    dst=$stage/usr/$rel
    mkdir -p "$(dirname "$dst")"
    if [[ -L $f ]]; then
      target=$(readlink "$f")
      if [[ $target == /* ]]; then
        t=${target#/}
        t=${t#usr/}
        target=$(realpath -m --relative-to="$(dirname "$dst")" "$stage/usr/$t")
      fi
      ln -sfn "$target" "$dst"
    else
      cp -p "$f" "$dst"
    fi
  done < <(dpkg -L "$p")
done
for h in "$stage"/usr/include/x86_64-linux-gnu/*.h; do [[ -e $h ]] && cp -p "$h" "$stage/usr/include/"; done
# Every symlink must resolve inside the stage.
while IFS= read -r l; do
  [[ -e $l ]] || die "deps: dangling link ${l#"$stage"/} -> $(readlink "$l")"
done < <(find "$stage" -type l)
tar -C "$stage" -cf - usr | xz -6 -T0 >"$tmp/deps.tar.xz"

# ---------------------------------------------------------------- manifest
glibc=$(objdump -T "$packed"/bin/* "$packed"/lib/*.so* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
glibcxx=$(objdump -T "$packed"/bin/* "$packed"/lib/*.so* 2>/dev/null | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
cudnn=$(sed -n 's/^SAGAN_CUDNN_LIBRARY:FILEPATH=//p' "$BUILD_DIR/CMakeCache.txt")
cudnn_inc=$(sed -n 's/^SAGAN_CUDNN_INCLUDE_DIR:PATH=//p' "$BUILD_DIR/CMakeCache.txt")
cudnn_v=$(awk '/^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{v = v (v ? "." : "") $3} END {print v}' \
  "$cudnn_inc/cudnn_version.h")
{
  echo "sagan device bundle"
  echo "built: $(date -u +%FT%TZ) on $(hostname), $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -m)"
  echo "source_hash: $hash"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" status --porcelain \
    --untracked-files=no 2>/dev/null | grep -q . && echo ' (with uncommitted changes)')"
  echo "compiler: $(g++ --version | head -1); nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), sm_90, SAGAN_NATIVE=OFF"
  echo "cudnn_compiled: $cudnn_v ($cudnn)"
  echo "needs: $glibc, $glibcxx (lib/compat has this machine's libstdc++ for an older system)"
  echo "build_seconds: $t_build"
  echo "packed in bin.tar.xz:"
  (cd "$packed" && find . -type f -printf '  %8k KiB  %P\n' | sort -k3)
} >"$tmp/MANIFEST.txt"
tar -C "$packed" -cf - bin lib | xz -9 -T1 >"$tmp/bin.tar.xz"
rm -rf "$packed"
{
  echo "files:"
  (cd "$tmp" && find . -type f -printf '  %8k KiB  %P\n' | sort -k3)
} >>"$tmp/MANIFEST.txt"

rm -rf "$BUNDLE"
mv "$tmp" "$BUNDLE"
say "bundle $BUNDLE: $(du -sh "$BUNDLE" | cut -f1) ($(du -sb "$BUNDLE" | cut -f1) bytes), source_hash $hash," \
  "cuDNN $cudnn_v, needs $glibc $glibcxx, built in ${t_build}s, assembled in $(($(date +%s) - t0 - t_build))s"

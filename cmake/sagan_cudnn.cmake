# cuDNN for the CUDA backend: SAGAN_CUDNN_INCLUDE_DIR (cudnn.h) and
# SAGAN_CUDNN_LIBRARY. Searched first under CUDNN_ROOT (a -D option or an
# environment variable), then in the CUDA toolkit's folders. CUDNN_ROOT may be
# a pip wheel's folder, e.g. <venv>/lib/python3.12/site-packages/nvidia/cudnn,
# whose lib/ holds only the versioned libcudnn.so.9 (no libcudnn.so link), so
# the versioned name is accepted too. The header's version is printed; a
# program can compare it with cudnnGetVersion() at run time (sagan_device_info).
set(CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "cuDNN folder holding include/cudnn.h and lib/libcudnn.so[.9] (optional)")
set(_sagan_cudnn_hints)
if(CUDNN_ROOT)
  list(APPEND _sagan_cudnn_hints ${CUDNN_ROOT})
endif()
list(APPEND _sagan_cudnn_hints ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_TARGET_DIR} /usr/local/cuda)
find_path(SAGAN_CUDNN_INCLUDE_DIR cudnn_version.h HINTS ${_sagan_cudnn_hints} ${CUDAToolkit_INCLUDE_DIRS}
  PATH_SUFFIXES include)
find_library(SAGAN_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_sagan_cudnn_hints} ${CUDAToolkit_LIBRARY_DIR}
  PATH_SUFFIXES lib lib64)
# Not found: SAGAN_CUDNN_FOUND is OFF and the caller decides (SAGAN_CUDA=ON
# stops, AUTO builds the CPU backend alone and says why).
set(SAGAN_CUDNN_FOUND OFF)
set(SAGAN_CUDNN_MISSING "cuDNN not found (cudnn_version.h: ${SAGAN_CUDNN_INCLUDE_DIR}; libcudnn.so or libcudnn.so.9: \
${SAGAN_CUDNN_LIBRARY}). Install it into the CUDA toolkit, or pass -DCUDNN_ROOT=<folder with include/ and lib/>, e.g. \
a venv's site-packages/nvidia/cudnn (pip install nvidia-cudnn-cu13), then delete CMakeCache.txt")
if(NOT SAGAN_CUDNN_INCLUDE_DIR OR NOT SAGAN_CUDNN_LIBRARY)
  return()
endif()
set(SAGAN_CUDNN_FOUND ON)
file(STRINGS ${SAGAN_CUDNN_INCLUDE_DIR}/cudnn_version.h _sagan_cudnn_defs REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
set(_sagan_cudnn_version "")
foreach(_part MAJOR MINOR PATCHLEVEL)
  string(REGEX MATCH "CUDNN_${_part} ([0-9]+)" _m "${_sagan_cudnn_defs}")
  list(APPEND _sagan_cudnn_version ${CMAKE_MATCH_1})
endforeach()
list(JOIN _sagan_cudnn_version "." SAGAN_CUDNN_VERSION)
message(STATUS "sagan: cuDNN ${SAGAN_CUDNN_VERSION}: ${SAGAN_CUDNN_INCLUDE_DIR}, ${SAGAN_CUDNN_LIBRARY}")

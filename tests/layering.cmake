# CTest test layering (label cpu), run with cmake -P -DSOURCE_DIR=<repo>:
# the include rules of docs/architecture.md. core/ includes nothing from
# kernels/ (backends register themselves); layers/, models/ and tools/ reach
# backends only through core, except kernels/cuda/settings.h (plain C++,
# every build); nothing outside tests/ and benchmarks/ includes tests/.
# Everywhere (tests/ and benchmarks/ too), the engine's headers are included
# with their prefix, "sagan/core/ops.h", as a program using the installed
# package includes them.
cmake_minimum_required(VERSION 3.24)
if(NOT DEFINED SOURCE_DIR)
  message(FATAL_ERROR "layering.cmake: -DSOURCE_DIR=... is required")
endif()

# folder -> include prefixes it may not use
set(_forbidden_core "dist/;kernels/;layers/;models/;tools/;tests/;benchmarks/")
set(_forbidden_kernels "dist/;layers/;models/;tools/;tests/;benchmarks/")
# dist/ (communicators) sits beside core: it may use the CUDA backend's
# stream (cuda_backend.h, for NCCL) but no other kernel and nothing above it.
set(_forbidden_dist "kernels/;layers/;models/;tools/;tests/;benchmarks/")
set(_allowed_dist "kernels/cuda/cuda_backend.h")
set(_forbidden_layers "kernels/;models/;tools/;tests/;benchmarks/")
set(_forbidden_models "kernels/;tools/;tests/;benchmarks/")
set(_forbidden_tools "kernels/;tests/;benchmarks/")
# Any layer above core may include the CUDA switches; core itself includes
# nothing from kernels/.
set(_allowed "kernels/cuda/settings.h")

set(_violations "")
set(_files_checked 0)
set(_engine_dirs core dist kernels layers models)
foreach(_dir core dist kernels layers models tools tests benchmarks)
  file(GLOB_RECURSE _files ${SOURCE_DIR}/${_dir}/*.h ${SOURCE_DIR}/${_dir}/*.cpp ${SOURCE_DIR}/${_dir}/*.cu
       ${SOURCE_DIR}/${_dir}/*.cuh ${SOURCE_DIR}/${_dir}/*.def)
  foreach(_f IN LISTS _files)
    math(EXPR _files_checked "${_files_checked} + 1")
    file(STRINGS ${_f} _includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
    foreach(_line IN LISTS _includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*$" "\\1" _inc "${_line}")
      string(REGEX MATCH "^[a-z_]+/" _top "${_inc}")
      string(REGEX REPLACE "/$" "" _top "${_top}")
      if(_top IN_LIST _engine_dirs)
        file(RELATIVE_PATH _rel ${SOURCE_DIR} ${_f})
        string(APPEND _violations "  ${_rel} includes \"${_inc}\" (engine headers are included as \"sagan/${_inc}\")\n")
      endif()
      string(REGEX REPLACE "^sagan/" "" _inc "${_inc}")
      if((_inc IN_LIST _allowed AND NOT _dir STREQUAL "core") OR _inc IN_LIST _allowed_${_dir})
        continue()
      endif()
      foreach(_prefix IN LISTS _forbidden_${_dir})
        string(FIND "${_inc}" "${_prefix}" _at)
        if(_at EQUAL 0)
          file(RELATIVE_PATH _rel ${SOURCE_DIR} ${_f})
          string(APPEND _violations "  ${_rel} includes \"${_inc}\" (${_dir}/ may not include ${_prefix})\n")
        endif()
      endforeach()
    endforeach()
  endforeach()
endforeach()

if(_files_checked LESS 50)
  message(FATAL_ERROR "layering: only ${_files_checked} files found under ${SOURCE_DIR}")
endif()
if(_violations)
  message(FATAL_ERROR "layering: includes against the rules of docs/architecture.md:\n${_violations}")
endif()
message(STATUS "layering: ${_files_checked} files, no include crosses the layers")

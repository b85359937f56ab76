# CTest test sanitizers_build (labels asan, fuzz), with cmake -P:
#   -DSOURCE_DIR=<sagan source> -DBUILD_DIR=<scratch build folder> [-DJOBS=2]
# Configures the asan preset (clang, address + undefined sanitizers, the
# libFuzzer harnesses) into BUILD_DIR instead of build/asan and builds what
# the asan_suite_a/_b and fuzz_<target> tests run: sagan_tests and the fuzzers.
foreach(_v SOURCE_DIR BUILD_DIR)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "build_asan.cmake: -D${_v}=... is required")
  endif()
endforeach()
if(NOT JOBS)
  set(JOBS 2)
endif()

function(run what)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(LENGTH "${out}" _len)
    if(_len GREATER 20000)
      math(EXPR _from "${_len} - 20000")
      string(SUBSTRING "${out}" ${_from} -1 out)
    endif()
    message(FATAL_ERROR "sanitizers_build: ${what} failed (${rc})\n${out}\n${err}")
  endif()
endfunction()

string(TIMESTAMP _t0 "%s")
run("configuring the asan preset" ${CMAKE_COMMAND} --preset asan -B ${BUILD_DIR})
run("building the asan preset" ${CMAKE_COMMAND} --build ${BUILD_DIR} --parallel ${JOBS} --target sagan_tests sagan_fuzzers)
string(TIMESTAMP _t1 "%s")
math(EXPR _secs "${_t1} - ${_t0}")
message(STATUS "sanitizers_build: ${BUILD_DIR} configured and built in ${_secs} s")

# Shared by tests/fuzz/CMakeLists.txt (the fuzz build itself) and
# tests/CMakeLists.txt (the release/cpu build, which runs the fuzzers of its
# asan sub-build): the list of harnesses and the bounded-run test.
set(SAGAN_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
file(GLOB _sagan_fuzz_sources CONFIGURE_DEPENDS ${SAGAN_FUZZ_DIR}/fuzz_*.cpp)
set(SAGAN_FUZZ_TARGETS)
foreach(_src ${_sagan_fuzz_sources})
  get_filename_component(_stem ${_src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" _target ${_stem})
  list(APPEND SAGAN_FUZZ_TARGETS ${_target})
endforeach()

# CTest test fuzz_<target> (label fuzz): `exe` for `seconds` on the checked-in
# corpus (every regression input is replayed first), new inputs and any crash
# kept under work_dir.
function(sagan_add_fuzz_test target exe work_dir seconds)
  set(_dict)
  if(EXISTS ${SAGAN_FUZZ_DIR}/dict/${target}.dict)
    set(_dict -DDICT=${SAGAN_FUZZ_DIR}/dict/${target}.dict)
  endif()
  add_test(NAME fuzz_${target}
    COMMAND ${CMAKE_COMMAND} -DFUZZER=${exe} -DSEEDS=${SAGAN_FUZZ_DIR}/corpus/${target} -DWORK_DIR=${work_dir}
            -DSECONDS=${seconds} ${_dict} -P ${SAGAN_FUZZ_DIR}/run_fuzzer.cmake)
  set_tests_properties(fuzz_${target} PROPERTIES LABELS fuzz TIMEOUT 600)
endfunction()

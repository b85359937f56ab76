# One bounded fuzzing run (the CTest tests fuzz_<target>), with cmake -P:
#   -DFUZZER=<fuzz_target exe> -DSEEDS=<tests/fuzz/corpus/target> -DWORK_DIR=<scratch>
#   [-DSECONDS=20] [-DDICT=<file.dict>]
# libFuzzer first replays every input in the seed corpus (regression inputs
# included), then mutates for SECONDS. New inputs go to WORK_DIR/corpus (kept
# between runs, never into the source tree); a crash goes to WORK_DIR/artifacts.
# A unit slower than 10 s, or one allocation above 512 MB (no input of a few
# KB has a right to that much), is a finding too.
foreach(_v FUZZER SEEDS WORK_DIR)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${_v}=... is required")
  endif()
endforeach()
if(NOT SECONDS)
  set(SECONDS 20)
endif()
file(MAKE_DIRECTORY ${WORK_DIR}/corpus ${WORK_DIR}/artifacts)
set(_args -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1
          -artifact_prefix=${WORK_DIR}/artifacts/)
if(DICT)
  list(APPEND _args -dict=${DICT})
endif()
string(TIMESTAMP _started "%s")
execute_process(COMMAND ${FUZZER} ${_args} ${WORK_DIR}/corpus ${SEEDS}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCHALL "stat::[a-z_]+: *[0-9]+" _stats "${err}")
string(REPLACE ";" "\n  " _stats "${_stats}")
if(NOT rc EQUAL 0)
  # The finding first, in a form a CI log keeps even when it shows only a
  # few lines: what failed, libFuzzer's seed, and the saved input as hex
  # (the artifacts folder does not outlive a CI machine). libFuzzer's
  # progress lines (#1234 NEW ...) say nothing about the finding and go.
  string(REGEX MATCH "INFO: Seed: [0-9]+" _seed "${err}")
  string(REPLACE "INFO: Seed" "; libFuzzer's seed" _seed "${_seed}")
  string(REGEX REPLACE "\n#[0-9]+\t[^\n]*" "" err "\n${err}")
  string(REGEX REPLACE "\n(INFO|MS|BINGO|DE):[^\n]*" "" err "${err}")
  string(LENGTH "${err}" _len)
  if(_len GREATER 8000)
    math(EXPR _from "${_len} - 8000")
    string(SUBSTRING "${err}" ${_from} -1 err)
  endif()
  file(GLOB _found ${WORK_DIR}/artifacts/*)
  set(_new "")
  foreach(_f ${_found})
    file(TIMESTAMP ${_f} _made "%s")
    if(NOT _made LESS _started)
      list(APPEND _new ${_f})  # not an earlier run's finding
    endif()
  endforeach()
  if(_new)  # else (a clock that disagrees: a network file system) all of them
    set(_found ${_new})
  endif()
  set(_inputs "")
  foreach(_f ${_found})
    file(SIZE ${_f} _size)
    file(READ ${_f} _hex HEX LIMIT 2048)
    string(APPEND _inputs "\n${_f} (${_size} bytes); as hex"
                          " (first 2048 bytes; xxd -r -p turns it back into the file):\n${_hex}\n")
  endforeach()
  message(FATAL_ERROR "${FUZZER} failed (${rc})${_seed}.\n${err}\nSaved input(s):${_inputs}\n"
                      "Reproduce: ${FUZZER} <saved input>. Fix, then keep the input as a regression seed in ${SEEDS}/.")
endif()
message(STATUS "${FUZZER}: ${SECONDS} s clean\n  ${_stats}")

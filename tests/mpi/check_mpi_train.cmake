# mpi_sagan_train (tests/mpi/CMakeLists.txt): sagan-train under mpirun -np 2
# on a folder of 8 small images (2 classes), ch 4, 2 images per rank.
#  1. 4 steps straight; 2 steps, then --resume to 4: metrics.csv's step-4
#     losses (logged in full precision, averaged over ranks) are equal, and
#     only rank 0 wrote (one header, one row per logged step);
#  2. --resume of that run by one process is refused (world size 2 vs 1),
#     saying to give --accumulate 2, with which it goes on;
#  3. a resume on a data set that shrank warns once; a corrupt image, read
#     by one rank, ends the job within the test's timeout with a message
#     naming the rank and the file, and a 2-rank resume command;
#  4. ranks that fail or differ at startup (rank 1: a missing data folder, a
#     data folder with an image less, another --lr-d) end together, without
#     MPI_Abort, rank 0 saying which rank and what, and rank 0's new run
#     directory is removed;
#  5. --help, a bad option, an unknown --preset and a missing --config print
#     once (rank 0) and end every rank alike (a bad option on rank 1 alone:
#     in 4);
#     and so do settings the rank's device refuses (--comm nccl and
#     --cuda-graph on the CPU); --write-config records the launch's ranks;
#  6. ranks given different run modes (--write-config on rank 0 alone, an
#     MPMD launch; --resume on rank 1 alone) end with an agreed error instead
#     of waiting in different collectives.
# Runs that could hang on a regression go under `timeout`, so they fail.
foreach(_v TRAIN MPIRUN DATA WORK_DIR)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "check_mpi_train.cmake: -D${_v}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/images/a ${WORK_DIR}/images/b)
set(data ${WORK_DIR}/images)
foreach(i RANGE 3)
  file(COPY_FILE ${DATA}/palette.png ${data}/a/p${i}.png)
  file(COPY_FILE ${DATA}/rgb444.jpg ${data}/b/j${i}.jpg)
endforeach()
set(common_nodata --dataset folder --channels 3 --ch 4 --z-dim 8 --batch-size 2 --log-every 2
    --sample-every 100 --checkpoint-every 2 --device cpu --seed 3 --check-sync-every 1 --quiet)
set(common ${common_nodata} --data ${data})
set(guard timeout -k 10 60)  # SIGTERM to mpirun ends its ranks; exit 124 then

function(train what expect_rc)
  execute_process(COMMAND ${MPIRUN} ${TRAIN} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(out "${out}${err}")
  if(expect_rc STREQUAL "0" AND NOT rc EQUAL 0)
    message(FATAL_ERROR "mpi_sagan_train: ${what} failed (exit ${rc})\n${out}")
  elseif(NOT expect_rc STREQUAL "0" AND rc EQUAL 0)
    message(FATAL_ERROR "mpi_sagan_train: ${what} succeeded; it should have failed\n${out}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

# `file` holds a match of `regex`; else fails, saying `what` is missing.
function(expect_in file regex what)
  file(READ ${file} text)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "mpi_sagan_train: ${file} does not record ${what}:\n${text}")
  endif()
endfunction()

# The loss columns (2-5) of metrics.csv's row for `step`.
function(losses run step out_var)
  file(STRINGS ${run}/metrics.csv rows)
  set(found "")
  set(headers 0)
  foreach(row IN LISTS rows)
    if(row MATCHES "^step,")
      math(EXPR headers "${headers} + 1")
    endif()
    string(REPLACE "," ";" cells "${row}")
    list(GET cells 0 s)
    if(s STREQUAL "${step}")
      list(SUBLIST cells 1 4 found)
    endif()
  endforeach()
  if(NOT headers EQUAL 1 OR NOT found)
    message(FATAL_ERROR "mpi_sagan_train: ${run}/metrics.csv: ${headers} header(s), step ${step}: '${found}'\n"
                        "(one writer, rank 0, expected)")
  endif()
  set(${out_var} "${found}" PARENT_SCOPE)
endfunction()

train("4 steps" 0 ${common} --steps 4 --run-dir ${WORK_DIR}/straight)
train("2 steps" 0 ${common} --steps 2 --run-dir ${WORK_DIR}/resumed)
train("--resume to 4 steps" 0 --resume ${WORK_DIR}/resumed --steps 4 --quiet)
losses(${WORK_DIR}/straight 4 a)
losses(${WORK_DIR}/resumed 4 b)
if(NOT a STREQUAL b)
  message(FATAL_ERROR "mpi_sagan_train: step 4 of the resumed run differs from the straight one:\n${a}\n${b}")
endif()
expect_in(${WORK_DIR}/straight/config.json "\"world_size\": 2" "world_size 2")

execute_process(COMMAND ${TRAIN} --resume ${WORK_DIR}/resumed --steps 6 --quiet RESULT_VARIABLE rc ERROR_VARIABLE err
                OUTPUT_VARIABLE out)
if(rc EQUAL 0 OR NOT err MATCHES "written by a run of 2 rank\\(s\\).*resumed with 1.*give --accumulate 2")
  message(FATAL_ERROR "mpi_sagan_train: a one-process resume of a 2-rank run was not refused (exit ${rc}):\n${out}${err}")
endif()
# ... and goes on with two passes an update (dp_check accumulate: as the
# two ranks would, up to the order of sums).
execute_process(COMMAND ${TRAIN} --resume ${WORK_DIR}/resumed --steps 6 --accumulate 2 --quiet RESULT_VARIABLE rc
                ERROR_VARIABLE err OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpi_sagan_train: a one-process resume of a 2-rank run with --accumulate 2 failed (exit ${rc}):\n${out}${err}")
endif()
losses(${WORK_DIR}/resumed 6 c)  # a row for step 6, under the file's one header
expect_in(${WORK_DIR}/resumed/config.json "\"world_size\": 1" "the resume's world size, 1")
expect_in(${WORK_DIR}/resumed/config.json "\"accumulate\": 2" "the resume's 2 passes")
expect_in(${WORK_DIR}/resumed/config_changes.log
          "accumulate 1 -> 2 \\(--accumulate\\); world_size 2 -> 1 \\(the launch\\)" "the new split")

# A resume on a data set that changed size starts a new epoch and warns: once, by rank 0.
file(MAKE_DIRECTORY ${WORK_DIR}/shrink)
file(COPY ${data}/a ${data}/b DESTINATION ${WORK_DIR}/shrink)
train("2 steps before the data shrinks" 0 ${common_nodata} --data ${WORK_DIR}/shrink --steps 2
      --run-dir ${WORK_DIR}/shrunk)
file(REMOVE ${WORK_DIR}/shrink/a/p3.png ${WORK_DIR}/shrink/b/j3.jpg)
execute_process(COMMAND ${guard} ${MPIRUN} ${TRAIN} --resume ${WORK_DIR}/shrunk --steps 3 RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCHALL "not an exact resume" copies "${out}${err}")
list(LENGTH copies n)
if(NOT rc EQUAL 0 OR NOT n EQUAL 1)
  message(FATAL_ERROR "mpi_sagan_train: a resume on shrunk data: exit ${rc} (0 expected), ${n} warning(s) "
                      "(1 expected, from rank 0):\n${out}${err}")
endif()

file(WRITE ${data}/a/zz_corrupt.png "not a PNG")
string(TIMESTAMP t0 "%s")
train("a corrupt image" 1 ${common} --steps 8 --run-dir ${WORK_DIR}/failing)
string(TIMESTAMP t1 "%s")
math(EXPR seconds "${t1} - ${t0}")
if(NOT last_output MATCHES "sagan-train \\(rank [01] of 2\\): error: [^\n]*zz_corrupt.png")
  message(FATAL_ERROR "mpi_sagan_train: the failing rank's message is missing:\n${last_output}")
endif()
# The command it gives to go on is one that works: a resume keeps the ranks.
if(NOT last_output MATCHES "then: mpirun -np 2 sagan-train --resume [^\n]*failing")
  message(FATAL_ERROR "mpi_sagan_train: the failing job's resume command is not a 2-rank one:\n${last_output}")
endif()

# 4. Startup failures and mismatches: rank 1 is given its own arguments
# (the first word for rank 0, the second for rank 1, then the command).
file(REMOVE ${data}/a/zz_corrupt.png)
file(MAKE_DIRECTORY ${WORK_DIR}/short/a ${WORK_DIR}/short/b)
foreach(i RANGE 3)
  if(i LESS 3)
    file(COPY_FILE ${DATA}/palette.png ${WORK_DIR}/short/a/p${i}.png)
  endif()
  file(COPY_FILE ${DATA}/rgb444.jpg ${WORK_DIR}/short/b/j${i}.jpg)
endforeach()
set(per_rank [=[a0=$1; a1=$2; shift 2; if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "$@" $a1; else exec "$@" $a0; fi]=])
function(startup_failure what rank0_args rank1_args expect)
  file(REMOVE_RECURSE ${WORK_DIR}/startup)
  execute_process(COMMAND ${guard} ${MPIRUN} sh -c "${per_rank}" sh "${rank0_args}" "${rank1_args}" ${TRAIN} ${common_nodata}
                          --steps 2 --run-dir ${WORK_DIR}/startup
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(out "${out}${err}")
  if(rc EQUAL 0 OR NOT out MATCHES "sagan-train: error: ${expect}" OR out MATCHES "MPI_ABORT")
    message(FATAL_ERROR "mpi_sagan_train: ${what}: expected an agreed error matching '${expect}', no MPI_ABORT "
                        "(exit ${rc}):\n${out}")
  endif()
  if(EXISTS ${WORK_DIR}/startup)
    message(FATAL_ERROR "mpi_sagan_train: ${what}: rank 0 left its new run directory ${WORK_DIR}/startup behind")
  endif()
endfunction()
startup_failure("rank 1 without its data" "--data ${data}" "--data ${WORK_DIR}/missing"
                "rank 1 of 2: [^\n]*missing")
startup_failure("rank 1 with an image less" "--data ${data}" "--data ${WORK_DIR}/short"
                "the settings, devices or data sets differ between ranks: rank 0 has 'data set: 8 images[^\n]*rank 1 of 2 has 'data set: 7 images")
startup_failure("rank 1 with another --lr-d" "--data ${data}" "--data ${data} --lr-d 0.000123"
                "the settings, devices or data sets differ between ranks: rank 0 has '[^']*', rank 1 of 2 has '[^']*0.000123")
startup_failure("rank 1 with an unknown option" "--data ${data}" "--data ${data} --no-such-option"
                "rank 1 of 2: [^\n]*not expected: --no-such-option")
# 5. --help and a bad option: every rank ends alike, rank 0 alone prints.
function(printed_once what arg expect_rc regex)
  execute_process(COMMAND ${guard} ${MPIRUN} ${TRAIN} ${arg} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REGEX MATCHALL "${regex}" copies "${out}${err}")
  list(LENGTH copies n)
  if(NOT rc EQUAL expect_rc OR NOT n EQUAL 1 OR "${out}${err}" MATCHES "MPI_ABORT")
    message(FATAL_ERROR "mpi_sagan_train: ${what} under mpirun: exit ${rc} (${expect_rc} expected), ${n} copies of "
                        "'${regex}' (1 expected), no MPI_ABORT:\n${out}${err}")
  endif()
endfunction()
printed_once("--help" --help 0 "sagan-train: train a Self-Attention GAN")
printed_once("a bad option" --no-such-option 1 "no-such-option")
# Resolving the settings fails alike on every rank: agreed too, no MPI_Abort.
printed_once("an unknown --preset" "--preset;bogus" 1 "rank 0 of 2: --preset: 'bogus' is not one of")
printed_once("a missing --config" "--config;${WORK_DIR}/none.json" 1 "rank 0 of 2: [^\n]*none.json")
# Settings that depend on the rank's device: checked before the Trainer's
# collectives, so agreed too (they used to end in MPI_Abort, printed by every rank).
file(REMOVE_RECURSE ${WORK_DIR}/startup)
printed_once("--comm nccl on the CPU" "${common};--steps;2;--run-dir;${WORK_DIR}/startup;--comm;nccl" 1
             "--comm nccl: NCCL reduces GPU tensors and this rank trains on cpu")
printed_once("--cuda-graph on the CPU" "${common};--steps;2;--run-dir;${WORK_DIR}/startup;--cuda-graph" 1
             "--cuda-graph: needs a CUDA device")
if(EXISTS ${WORK_DIR}/startup)
  message(FATAL_ERROR "mpi_sagan_train: a refused device setting left its run directory ${WORK_DIR}/startup")
endif()
# --write-config writes what this launch would train with: 2 ranks (on a
# commented-out line: the launch sets it, the line tells the reader).
execute_process(COMMAND ${guard} ${MPIRUN} ${TRAIN} ${common} --write-config ${WORK_DIR}/launch.toml RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpi_sagan_train: --write-config under mpirun failed (exit ${rc}):\n${out}${err}")
endif()
expect_in(${WORK_DIR}/launch.toml "world_size = 2" "the launch's world size, 2")

# 6. Different run modes. --resume on rank 1 alone would send it to a
# broadcast while rank 0 gathers (resume_everywhere).
startup_failure("rank 1 resuming" "--data ${data}" "--data ${data} --resume ${WORK_DIR}/resumed"
                "the command lines differ between ranks: rank 0 has '--resume: not given', rank 1 of 2 has '--resume: given'")
# --write-config on rank 0 alone, as an MPMD launch: rank 0 used to write the
# file and exit while rank 1 waited for it in the first collective.
list(GET MPIRUN 0 mpirun)
file(REMOVE_RECURSE ${WORK_DIR}/startup)
execute_process(COMMAND ${guard} ${mpirun} --oversubscribe -np 1 ${TRAIN} ${common} --run-dir ${WORK_DIR}/startup
                        --write-config ${WORK_DIR}/written.json : -np 1 ${TRAIN} ${common} --run-dir ${WORK_DIR}/startup
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(out "${out}${err}")
string(REGEX MATCHALL "sagan-train: error:" copies "${out}")
list(LENGTH copies n)
if(NOT rc EQUAL 1 OR NOT n EQUAL 1 OR out MATCHES "MPI_ABORT" OR NOT out MATCHES
   "the command lines differ between ranks: rank 0 has '--write-config: given', rank 1 of 2 has '--write-config: not given'")
  message(FATAL_ERROR "mpi_sagan_train: --write-config on rank 0 alone (MPMD): exit ${rc} (1 expected; 124: it hung), "
                      "${n} error line(s) (1 expected), no MPI_ABORT:\n${out}")
endif()
if(EXISTS ${WORK_DIR}/written.json OR EXISTS ${WORK_DIR}/startup)
  message(FATAL_ERROR "mpi_sagan_train: --write-config on rank 0 alone: something was written")
endif()
message(STATUS "mpi_sagan_train: passed; the job with a corrupt image ended in ${seconds} s")

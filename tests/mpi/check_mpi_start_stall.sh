#!/usr/bin/env bash
# mpi_start_stall (tests/mpi/CMakeLists.txt): a rank stuck before the first
# step (here rank 1's read of its data, a FIFO nobody writes: a stalled
# network file system looks the same) ends a 2-rank sagan-train within
# --dist-timeout and a few seconds, instead of leaving rank 0 in its first
# collective forever: the stuck rank's start watchdog names itself and the
# start, exits 1, and mpirun ends the other rank (models/train_run.cpp
# make_watchdog, docs/distributed.md "Failures"). Each rank reads its own
# copy of the data (Open MPI's MPMD form, `A : B`), as on machines that
# mount the data at their own paths.
# Usage: check_mpi_start_stall.sh SAGAN_TRAIN WORK_DIR MPIEXEC
set -u
TRAIN=$1 WORK=$2 MPIEXEC=$3
TIMEOUT=3
rm -rf "$WORK" && mkdir -p "$WORK/data0" "$WORK/data1" || exit 1
# Rank 0: a tiny Fashion-MNIST in IDX form, 8 images of 28x28 and their labels.
{
  printf '\x00\x00\x08\x03\x00\x00\x00\x08\x00\x00\x00\x1c\x00\x00\x00\x1c'
  head -c $((8 * 28 * 28)) /dev/urandom
} >"$WORK/data0/train-images-idx3-ubyte" || exit 1
printf '\x00\x00\x08\x01\x00\x00\x00\x08\x00\x01\x02\x03\x04\x05\x06\x07' >"$WORK/data0/train-labels-idx1-ubyte" || exit 1
# Rank 1: the same names as FIFOs; opening one for reading blocks.
mkfifo "$WORK/data1/train-images-idx3-ubyte" "$WORK/data1/train-labels-idx1-ubyte" || exit 1
fail() {
  echo "mpi_start_stall: $*" >&2
  echo "--- output" >&2
  tail -12 "$WORK/out" >&2
  exit 1
}
args=(--dataset fashion-mnist --ch 4 --z-dim 8 --batch-size 2 --device cpu --steps 3 --log-every 1
  --sample-every 100000 --checkpoint-every 100000 --fd-every 0 --dist-timeout "$TIMEOUT" --run-dir "$WORK/run")
started=$SECONDS
timeout -s KILL 120 "$MPIEXEC" --oversubscribe -np 1 "$TRAIN" "${args[@]}" --data "$WORK/data0" : \
  -np 1 "$TRAIN" "${args[@]}" --data "$WORK/data1" >"$WORK/out" 2>&1
rc=$?
took=$((SECONDS - started))
((rc != 137)) || fail "the job still ran 120 s after its start (--dist-timeout $TIMEOUT): it hangs"
((rc != 0 && rc < 128)) || fail "exit $rc, expected an error's (1-127)"
# Rank 1 names itself first (rank 0, waiting in a collective, gives it a
# second more); on a machine too busy for that, rank 0 names its wait.
start="error: the start \(loading the data, [^)]*\) has not finished after [0-9]+ s \(--dist-timeout $TIMEOUT\)"
grep -qE "sagan-train \(rank 1 of 2\): $start; this rank was not waiting for the others: it is stuck itself" "$WORK/out" ||
  grep -qE "sagan-train \(rank 0 of 2\): $start; this rank was waiting for the others in MPI_" "$WORK/out" ||
  fail "no rank reported the start's stall, naming itself, the timeout and where it was"
grep -q "step 1/" "$WORK/out" && fail "a step ran although rank 1 never started"
echo "mpi_start_stall: rank 1 stuck reading its data; the job ended after ${took} s, exit $rc, with the report"

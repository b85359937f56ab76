#!/usr/bin/env bash
# mpi_stall (tests/mpi/CMakeLists.txt): a rank that stops responding while
# staying alive (SIGSTOP, as a hung node or a stalled read would) ends a
# 2-rank sagan-train within --dist-timeout and a few seconds, instead of
# leaving rank 0 in its all-reduce forever: rank 0's watchdog names itself,
# the timeout and the MPI call it waited in, exits 1, and mpirun ends the
# stopped rank too (dist/watchdog.h, docs/distributed.md "Failures").
# Usage: check_mpi_stall.sh SAGAN_TRAIN DATA_DIR WORK_DIR MPIRUN...
set -u
TRAIN=$1 DATA=$2 WORK=$3
shift 3
MPIRUN=("$@")
TIMEOUT=5  # a tiny model's step takes milliseconds: never reached before the stop
rm -rf "$WORK" && mkdir -p "$WORK/images/a" "$WORK/images/b" || exit 1
for i in 0 1 2 3; do
  cp "$DATA/palette.png" "$WORK/images/a/p$i.png" && cp "$DATA/rgb444.jpg" "$WORK/images/b/j$i.jpg" || exit 1
done
pid= rank1=
trap '[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; [[ -n $rank1 ]] && kill -KILL "$rank1" 2>/dev/null' EXIT
# shellcheck source=../support/wait_for_line.sh
source "$(dirname "$0")/../support/wait_for_line.sh"
fail() {
  echo "mpi_stall: $*" >&2
  echo "--- output" >&2
  tail -12 "$WORK/out" >&2
  exit 1
}
"${MPIRUN[@]}" "$TRAIN" --dataset folder --data "$WORK/images" --channels 3 --ch 4 --z-dim 8 --batch-size 2 \
  --device cpu --log-every 1 --sample-every 100000 --checkpoint-every 100000 --steps 100000 \
  --dist-timeout "$TIMEOUT" --run-dir "$WORK/run" >"$WORK/out" 2>&1 &
pid=$!
wait_for_line "$WORK/out" 0 'step [0-9]+/'
# Steps keep the watchdog quiet: the job trains on past the timeout.
sleep $((TIMEOUT + 3))
kill -0 "$pid" 2>/dev/null || fail "the job ended before any rank stopped"
# Rank 1: this test's sagan-train process (by its run directory; mpirun's
# command line names it too) whose environment says rank 1.
for p in $(pgrep -f -- "--run-dir $WORK/run"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && rank1=$p
done
[[ -n $rank1 ]] || fail "rank 1's process not found"
kill -STOP "$rank1" || fail "cannot stop rank 1 ($rank1)"
stopped=$SECONDS
# Well past the timeout: a job still running then hangs for good.
for _ in $(seq 600); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "the job still runs $((SECONDS - stopped)) s after rank 1 stopped (--dist-timeout $TIMEOUT)"
wait "$pid"
rc=$?
pid=
((rc != 0 && rc < 128)) || fail "exit $rc after the stall, expected an error's (1-127)"
grep -qE "sagan-train \(rank 0 of 2\): error: no training step finished in the last [0-9]+ s \(--dist-timeout $TIMEOUT\); this rank was waiting for the others in MPI_[A-Za-z]+" "$WORK/out" ||
  fail "rank 0 did not report the stall, naming itself, the timeout and the MPI call"
# mpirun ends the stopped rank too (SIGKILL works on a stopped process).
for _ in $(seq 100); do
  kill -0 "$rank1" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$rank1" 2>/dev/null && fail "rank 1 ($rank1) is left behind, stopped"
rank1=
echo "mpi_stall: rank 1 stopped; the job ended $((SECONDS - stopped)) s later, exit $rc, rank 0 naming the stall"

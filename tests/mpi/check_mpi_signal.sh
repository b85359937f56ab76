#!/usr/bin/env bash
# mpi_signal_stop (tests/mpi/CMakeLists.txt): SIGUSR1 sent to mpirun, which
# Open MPI forwards to every rank as it is, stops a 2-rank sagan-train after
# the same step on both ranks with a checkpoint (exit 138); --resume under
# mpirun goes on from it. (Ctrl-C / SIGTERM to mpirun become a SIGTERM to the
# ranks and, a second later, SIGKILL: docs/distributed.md, "Stopping".)
# Usage: check_mpi_signal.sh SAGAN_TRAIN DATA_DIR WORK_DIR MPIRUN...
set -u
TRAIN=$1 DATA=$2 WORK=$3
shift 3
MPIRUN=("$@")
rm -rf "$WORK" && mkdir -p "$WORK/images/a" "$WORK/images/b" || exit 1
for i in 0 1 2 3; do
  cp "$DATA/palette.png" "$WORK/images/a/p$i.png" && cp "$DATA/rgb444.jpg" "$WORK/images/b/j$i.jpg" || exit 1
done
run=$WORK/run
pid=
trap '[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null' EXIT
# shellcheck source=../support/wait_for_line.sh
source "$(dirname "$0")/../support/wait_for_line.sh"
fail() {
  echo "mpi_signal_stop: $*" >&2
  for f in "$WORK"/*.out; do echo "--- $f" >&2; tail -12 "$f" >&2; done
  exit 1
}
args=(--dataset folder --data "$WORK/images" --channels 3 --ch 4 --z-dim 8 --batch-size 2 --device cpu --log-every 1
      --sample-every 100000 --checkpoint-every 100000 --check-sync-every 1)
"${MPIRUN[@]}" "$TRAIN" "${args[@]}" --steps 100000 --run-dir "$run" >"$WORK/first.out" 2>&1 &
pid=$!
# (Open MPI gives the ranks a pseudo-terminal: progress lines end in \r, so
# the step line is not anchored.)
wait_for_line "$WORK/first.out" 0 'step [0-9]+/'
kill -USR1 "$pid"
wait "$pid"
rc=$?
pid=
((rc == 138)) || fail "SIGUSR1 to mpirun: exit $rc, expected 138"
grep -qF "continue with: mpirun -np 2 sagan-train --resume $run" "$WORK/first.out" || fail "no resume command printed"
ckpt=$(ls "$run"/checkpoints/step_*.safetensors 2>/dev/null | tail -1)
[[ -n $ckpt ]] || fail "no checkpoint written"
step=${ckpt##*/step_}
step=$((10#${step%%.*}))
"${MPIRUN[@]}" "$TRAIN" --resume "$run" --steps $((step + 2)) --quiet >"$WORK/resume.out" 2>&1 ||
  fail "--resume under mpirun failed"
[[ -f $run/checkpoints/step_$(printf %08d $((step + 2))).safetensors ]] || fail "--resume did not reach step $((step + 2))"
echo "mpi_signal_stop: SIGUSR1 to mpirun stopped both ranks at step $step with a checkpoint (exit 138); resumed to $((step + 2))"

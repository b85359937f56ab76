#!/usr/bin/env bash
# cli_signal_stop (tools/CMakeLists.txt): a run stopped by Ctrl-C (SIGINT),
# SIGTERM or SIGUSR1 saves a checkpoint and exits 128 + the signal (130, 143,
# 138), not 0; a second signal ends it at once;
# a second process on the same run directory is refused while the first
# trains; --resume continues, and refuses fewer steps than were done.
# Usage: check_signal_stop.sh SAGAN_TRAIN WORK_DIR (needs Fashion-MNIST).
set -u
TRAIN=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
run=$WORK/run
pid=
# A trainer left running (a failed check, ctest's timeout) is stopped.
trap '[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null' EXIT
fail() {
  {
    echo "cli_signal_stop: $*"
    for f in "$WORK"/*.out; do echo "--- $f"; tail -5 "$f"; done
  } >&2
  exit 1
}
# shellcheck source=../tests/support/wait_for_line.sh
source "$(dirname "$0")/../tests/support/wait_for_line.sh"
# Waits until $1 shows a step line after its first $2 lines.
wait_for_step() { wait_for_line "$1" "$2" '^step [0-9]+/'; }
newest_step() {
  local f
  f=$(ls "$run"/checkpoints/step_*.safetensors 2>/dev/null | sort | tail -1)
  [[ -n $f ]] || fail "no checkpoint in $run/checkpoints"
  f=${f##*/step_}
  echo $((10#${f%%.*}))
}
# Resumes the run in the background, waits for its first step, sends the
# given signals at once and sets rc to its exit code; output in $WORK/$1.out.
resume_and_signal() {
  local name=$1
  shift
  "$TRAIN" --resume "$run" --steps 100000 >"$WORK/$name.out" 2>&1 &
  pid=$!
  wait_for_step "$WORK/$name.out" 0
  for sig in "$@"; do kill -"$sig" "$pid"; done
  wait "$pid"
  rc=$?
  pid=
}
small=(--ch 4 --z-dim 8 --batch-size 4 --log-every 1 --sample-every 100000 --checkpoint-every 100000 --device cpu)

"$TRAIN" "${small[@]}" --steps 100000 --run-dir "$run" >"$WORK/first.out" 2>&1 &
pid=$!
wait_for_step "$WORK/first.out" 0
"$TRAIN" --resume "$run" --quiet >"$WORK/second.out" 2>&1
rc=$?
((rc == 1)) || fail "a second sagan-train on the same run dir exited $rc, expected 1"
grep -q "is in use by another sagan-train process" "$WORK/second.out" || fail "the second process did not say the run dir is in use"
kill -INT "$pid"
wait "$pid"
rc=$?
pid=
((rc == 130)) || fail "SIGINT: exit $rc, expected 130"
grep -qF "continue with: sagan-train --resume $run" "$WORK/first.out" || fail "SIGINT: no resume command printed"
step=$(newest_step) || exit 1

"$TRAIN" --resume "$run" --steps 1 --quiet >"$WORK/fewer.out" 2>&1 && fail "--resume --steps 1 was accepted at step $step"
grep -q "already at step $step" "$WORK/fewer.out" || fail "--resume --steps 1: no 'already at step $step'"
"$TRAIN" --resume "$run" --steps $((step + 1)) --quiet >"$WORK/more.out" 2>&1 || fail "--resume --steps $((step + 1)) failed"
now=$(newest_step) || exit 1
[[ $now == $((step + 1)) ]] || fail "--resume did not reach step $((step + 1))"

resume_and_signal term TERM
((rc == 143)) || fail "SIGTERM: exit $rc, expected 143"
now=$(newest_step) || exit 1
((now > step + 1)) || fail "SIGTERM: no checkpoint past step $((step + 1))"
grep -q "stopping once the current step is done" "$WORK/term.out" || fail "SIGTERM: the stop was not announced at once"

# SIGUSR1 (what mpirun forwards as it is, and Slurm sends ahead of a time
# limit) stops the same way: 128 + 10.
resume_and_signal usr1 USR1
((rc == 138)) || fail "SIGUSR1: exit $rc, expected 138"
grep -qF "continue with: sagan-train --resume $run" "$WORK/usr1.out" || fail "SIGUSR1: no resume command printed"

# A second signal quits at once, by that signal's default (130 or 143: the
# two may arrive in either order), without the clean stop's checkpoint and
# resume line.
resume_and_signal twice INT TERM
((rc == 130 || rc == 143)) || fail "SIGINT and SIGTERM: exit $rc, expected 130 or 143"
grep -q "continue with" "$WORK/twice.out" && fail "SIGINT and SIGTERM: the run went on to a clean stop"
"$TRAIN" --resume "$run" --steps $(($(newest_step) + 1)) --quiet >"$WORK/after.out" 2>&1 ||
  fail "--resume after a run ended by a second signal failed"
echo "cli_signal_stop: SIGINT 130 at step $step, SIGTERM 143, SIGUSR1 138, a second signal at once, a second process refused, --resume exact in steps"

# Sourced by the signal tests (tools/check_signal_stop.sh,
# tests/mpi/check_mpi_signal.sh). Needs the caller's $pid (the process that
# writes the file) and fail().
# wait_for_line FILE SKIP REGEX: waits up to 120 s until a line of FILE after
# its first SKIP lines matches the extended REGEX; fails if $pid ends first.
wait_for_line() {
  local _
  for _ in $(seq 1200); do
    tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -qE "$3" && return 0
    kill -0 "$pid" 2>/dev/null || fail "the process writing $1 ended before a line matching '$3'"
    sleep 0.1
  done
  fail "no line matching '$3' in $1 within 120 s"
}

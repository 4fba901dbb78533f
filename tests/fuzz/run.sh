#!/usr/bin/env bash
# Run the fuzz targets of a FNET_FUZZ build, JOBS at a time, each for SECONDS:
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]     (default: every target; JOBS=2)
# Seeds come from tests/fuzz/corpus/<target>/ (read only); what the fuzzer finds goes to
# BUILD_DIR/fuzz/work/<target>/, crashing inputs to BUILD_DIR/fuzz/artifacts/, logs to
# BUILD_DIR/fuzz/logs/. Prints one line per target (executions, seconds, result) and exits 1 if
# any target crashed, leaked, hung (an input over 10 s) or hit the memory limit.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}"
seconds="${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}"
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json spec idx checkpoint)
jobs="${JOBS:-2}"
bin="$build/fuzz"
mkdir -p "$bin/work" "$bin/artifacts" "$bin/logs"
# the targets' scratch files (a run stopped by its time limit leaves its last input's files)
shm=/dev/shm; [ -w "$shm" ] || shm="$bin"
export TMPDIR="$(mktemp -d "$shm/fnet-fuzz-run.XXXXXX")"
trap 'rm -rf "$TMPDIR"' EXIT

run_one() {
  local t="$1"
  mkdir -p "$bin/work/$t"
  "$bin/fuzz_$t" "$bin/work/$t" "$here/corpus/$t" $([ -d "$here/regressions/$t" ] && echo "$here/regressions/$t") -dict="$here/$t.dict" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -malloc_limit_mb=3072 \
    -print_final_stats=1 -artifact_prefix="$bin/artifacts/$t-" >"$bin/logs/$t.log" 2>&1
}

declare -A pid_of
for t in "${targets[@]}"; do
  [ -x "$bin/fuzz_$t" ] || { echo "fuzz: $bin/fuzz_$t is not built" >&2; exit 2; }
done
status=0
running=()
report() {
  local t="$1" rc="$2" log="$bin/logs/$1.log"
  local execs secs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ "$rc" = 0 ]; then
    printf 'fuzz_%-11s ok     %10s execs in %4s s\n' "$t" "${execs:-?}" "${secs:-?}"
  else
    printf 'fuzz_%-11s FAILED (exit %s); log %s:\n' "$t" "$rc" "$log"
    grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written|runtime error|timeout|out-of-memory' \
      "$log" | head -20
    status=1
  fi
}
for t in "${targets[@]}"; do
  while [ ${#running[@]} -ge "$jobs" ]; do
    wait -n -p done_pid; rc=$?
    for i in "${!running[@]}"; do
      if [ "${pid_of[${running[$i]}]}" = "$done_pid" ]; then
        report "${running[$i]}" "$rc"; unset 'running[i]'; running=("${running[@]}"); break
      fi
    done
  done
  run_one "$t" & pid_of[$t]=$!
  running+=("$t")
done
for t in "${running[@]}"; do
  wait "${pid_of[$t]}"; report "$t" "$?"
done
exit $status

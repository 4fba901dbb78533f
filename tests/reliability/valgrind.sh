#!/usr/bin/env bash
# Valgrind memcheck (docs/reliability.md): a short fnet-train run that trains, saves, resumes from
# the checkpoint and saves again on real IDX data, then the unit tests of the code that reads
# outside input. Any memcheck error or definite/indirect leak fails (exit 1).
#   tests/reliability/valgrind.sh BUILD_DIR DATA_DIR
set -euo pipefail
build="${1:?usage: valgrind.sh BUILD_DIR DATA_DIR}"
data="${2:?usage: valgrind.sh BUILD_DIR DATA_DIR}"
tests=(test_json test_spec test_idx test_dataset test_checkpoint test_fuzz_corpus
       test_fault_injection)
vg=(valgrind -q --error-exitcode=101 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --child-silent-after-fork=yes)
export OPENBLAS_NUM_THREADS=1
tmp="$(mktemp -d "${TMPDIR:-/tmp}/fnet-valgrind.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
status=0

run() { # name, command...
  local name="$1" t0=$SECONDS rc=0
  shift
  "${vg[@]}" "$@" >"$tmp/$name.log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    printf 'valgrind %-24s ok     %3d s\n' "$name" $((SECONDS - t0))
  else
    printf 'valgrind %-24s FAILED (exit %s%s):\n' "$name" "$rc" \
      "$([ "$rc" = 101 ] && echo ', memcheck errors')"
    grep -E '^==[0-9]+==|ERROR|FAIL' "$tmp/$name.log" | head -40
    status=1
  fi
}

train=("$build/bin/fnet-train" --data "$data" --limit-train 500 --batch 50 --threads 1 --epochs 1)
run fnet-train "${train[@]}" --model dense:64,relu,dense:10 --val-split 0.1 \
  --save "$tmp/m.safetensors" --json "$tmp/m.json"
run fnet-train-resume "${train[@]}" --load "$tmp/m.safetensors" --save "$tmp/m.safetensors"
for t in "${tests[@]}"; do
  run "$t" "$build/tests/$t"
done
exit $status

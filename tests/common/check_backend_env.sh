#!/usr/bin/env bash
# A test binary that reads FNET_TEST_BACKEND (tests/common/test_util.c, fnet_test_ctx):
# - run with a name that is no backend, or a CUDA device that is no number, must fail and say
#   which name was wrong;
# - run on a CUDA device that no machine has (cuda:999999) must skip, not pass or fail: exit 77
#   (CTest's SKIP_RETURN_CODE) with "skipped:", the variable and the probe's reason.
# Usage: check_backend_env.sh TEST
set -u
for bad in gaurded cuda:x; do
  out=$(FNET_TEST_BACKEND=$bad "$1" 2>&1)
  status=$?
  if [ "$status" -eq 0 ] || [ "$status" -eq 77 ]; then
    echo "FAIL: $1 exited $status with FNET_TEST_BACKEND=$bad, not as a failure"
    exit 1
  fi
  if ! grep -q "FNET_TEST_BACKEND is '$bad', which is no backend" <<<"$out"; then
    echo "FAIL: $1 failed without naming the bad FNET_TEST_BACKEND=$bad; it printed:"
    echo "$out" | head -20
    exit 1
  fi
  echo "ok: $1 refused FNET_TEST_BACKEND=$bad (exit $status)"
done
out=$(FNET_TEST_BACKEND=cuda:999999 "$1" 2>&1)
status=$?
if [ "$status" -ne 77 ]; then
  echo "FAIL: $1 exited $status with FNET_TEST_BACKEND=cuda:999999, not 77 (skipped); it printed:"
  echo "$out" | head -20
  exit 1
fi
if ! grep -q "^skipped: FNET_TEST_BACKEND=cuda:999999: ." <<<"$out"; then
  echo "FAIL: $1 skipped FNET_TEST_BACKEND=cuda:999999 without saying why; it printed:"
  echo "$out" | head -20
  exit 1
fi
echo "ok: $1 $(grep '^skipped:' <<<"$out")"

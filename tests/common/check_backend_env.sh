#!/usr/bin/env bash
# A test binary that reads FNET_TEST_BACKEND, run with a name that is no backend, must fail and
# say which name was wrong (tests/common/test_util.c, fnet_test_ctx). Usage: check_backend_env.sh TEST
set -u
out=$(FNET_TEST_BACKEND=gaurded "$1" 2>&1)
status=$?
if [ "$status" -eq 0 ]; then
  echo "FAIL: $1 passed with FNET_TEST_BACKEND=gaurded"
  exit 1
fi
if ! grep -q "FNET_TEST_BACKEND is 'gaurded', which is no backend" <<<"$out"; then
  echo "FAIL: $1 failed without naming the bad FNET_TEST_BACKEND; it printed:"
  echo "$out" | head -20
  exit 1
fi
echo "ok: $1 refused FNET_TEST_BACKEND=gaurded (exit $status)"

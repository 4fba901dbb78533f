#!/usr/bin/env bash
# Run examples/train_mlp on a tiny synthetic IDX dataset for 2 epochs: it must exit 0, report the
# test accuracy (trained and reloaded) and leave its checkpoint behind.
# Usage: run_example.sh TRAIN_MLP MAKE_TINY_IDX
set -u
example=$1
make_idx=$2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fnet-example.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "run_example: FAIL: $*" >&2; exit 1; }

mkdir "$tmp/data" || exit 1
"$make_idx" "$tmp/data" 512 128 || fail "make_tiny_idx failed"

ckpt="$tmp/mlp.safetensors"
(cd "$tmp" && "$example" "$tmp/data" 2 "$ckpt") >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out"
cat "$tmp/err" >&2
[ "$rc" -eq 0 ] || fail "train_mlp exited with $rc"
expect() { grep -q "$1" "$tmp/out" || fail "$2"; }
expect '^epoch 2/2: .*test accuracy [0-9.]*' "no line for epoch 2 with its accuracy"
expect '^test accuracy [0-9.]*' "the test accuracy is not reported"
expect '^reloaded .*: test accuracy [0-9.]*' "the reloaded model's accuracy is not reported"
expect '^one SGD step on a batch of 64: loss ' "the hand-written SGD step is not reported"
[ -s "$ckpt" ] || fail "the checkpoint $ckpt was not written"
[ ! -s "$tmp/err" ] || fail "train_mlp wrote to stderr"
echo "run_example: ok"

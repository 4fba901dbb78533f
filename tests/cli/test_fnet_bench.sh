#!/usr/bin/env bash
# End-to-end tests of fnet-bench: what it counts (the GEMM flops of dense and low-rank layers,
# none for a block-circulant one, so GFLOP/s over samples/s is the step's flops per sample), one
# row and one JSON object per model, and bad input (exit 2 for bad usage, one line
# "fnet-bench: error: <what> (<where>)" on stderr). No timing is asserted: the runs are 10 ms.
#
# usage: test_fnet_bench.sh BIN_DIR MKIDX
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-bench "$@"

"$MKIDX" --side 8 --classes 4 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"

run help --help
good "--help"
grep -q -- '--layers' help.out && grep -q 'GEMMs only' help.out ||
    fail "--help: does not describe --layers and what GFLOP/s counts" "$(seen)"
ok "--help exits 0"

# --- flops per sample, from the printed rates --------------------------------------------------
# 8x8 images (64 inputs). Per sample, forward + backward:
#   dense 64->16, the first layer (no input gradient):   4·64·16          = 4096
#   lowrank 16->8 rank 2: 2·(4·16 + 6·8) + 2·16·2 (dx)                    =  288
#   dense 8->4: 6·8·4                                                      =  192
#   circ 4->4 block 2: not a GEMM, not counted                            =    0
lr=dense:16,relu,lowrank:8:rank=2,relu,dense:4
ci=dense:16,relu,lowrank:8:rank=2,relu,circ:8:block=2,relu,dense:4
run models --data data --batch 8 --seconds 0.01 --repeat 1 --threads 1 --json b.jsonl \
    --model "$lr" --model "$ci"
good "two models"
grep -q "^$lr  *8 " models.out && grep -q "^$ci  *8 " models.out ||
    fail "a row per model with its batch" "$(seen)"
ok "one row per model, the column as wide as the longest spec"
[ "$(grep -c '"event":"bench"' b.jsonl)" -eq 2 ] || fail "two JSON objects" "$(cat b.jsonl)"
i=0
for want in 4576 4576; do
    i=$((i + 1))
    line=$(sed -n "${i}p" b.jsonl)
    sps=$(json_field "$line" samples_per_s)
    gf=$(json_field "$line" gflops)
    awk -v s="$sps" -v g="$gf" -v w="$want" 'BEGIN { f = g * 1e9 / s; exit !(s > 0 && f > w - 0.5 && f < w + 0.5) }' ||
        fail "model $i: GFLOP/s over samples/s should be $want flops per sample" "$line"
    ok "model $i: $want counted flops per sample"
done

# --- bad usage ----------------------------------------------------------------------------------
bad 2 'unknown option' "an unknown option" --frobnicate
bad 2 'seconds' "--seconds 0" --seconds 0
bad 2 'rank' "a rank above min(n_in, n_out)" --data data --model dense:16,lowrank:8:rank=9
bad 2 'block' "a block not dividing the sizes" --data data --model dense:16,circ:8:block=3
bad 2 'optimizer' "an unknown optimizer" --optim nope

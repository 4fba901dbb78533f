#!/usr/bin/env bash
# End-to-end tests of fnet-bench: what it counts (the GEMM flops of dense and low-rank layers,
# none for block-circulant, tensor-ring, Tucker or CP ones, so GFLOP/s over samples/s is the
# step's flops per sample), one row and one JSON object per model, the rows of --layers --kinds
# for the tensor-ring, Tucker and CP layers of fnet-compare (kind, spec and parameters in the
# JSON), and bad input (exit 2 for bad usage, one line "fnet-bench: error: <what> (<where>)" on
# stderr). No timing is asserted: the runs are 10 ms.
#
# usage: test_fnet_bench.sh BIN_DIR MKIDX
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-bench "$@"

"$MKIDX" --side 8 --classes 4 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"

run help --help
good "--help"
grep -q -- '--layers' help.out && grep -q 'GEMMs only' help.out && grep -q -- '--kinds' help.out ||
    fail "--help: does not describe --layers, --kinds and what GFLOP/s counts" "$(seen)"
for spec in tr:1024: tucker:1024: cp:1024:; do
    grep -q "$spec" help.out || fail "--help: does not name the $spec layer of --layers" "$(seen)"
done
ok "--help exits 0"

# --- flops per sample, from the printed rates --------------------------------------------------
# 8x8 images (64 inputs). Per sample, forward + backward:
#   dense 64->16, the first layer (no input gradient):   4·64·16          = 4096
#   lowrank 16->8 rank 2: 2·(4·16 + 6·8) + 2·16·2 (dx)                    =  288
#   dense 8->4: 6·8·4                                                      =  192
#   circ 4->4 block 2: not a GEMM, not counted                            =    0
#   tr 16->16, tucker 16->8, cp 8->8: not GEMMs of the count                =    0
lr=dense:16,relu,lowrank:8:rank=2,relu,dense:4
ci=dense:16,relu,lowrank:8:rank=2,relu,circ:8:block=2,relu,dense:4
tn=dense:16,relu,tr:16:rank=2,relu,tucker:8:rank=2,relu,lowrank:8:rank=2,relu,cp:8:rank=2,relu,dense:4
run models --data data --batch 8 --seconds 0.01 --repeat 1 --threads 1 --json b.jsonl \
    --model "$lr" --model "$ci" --model "$tn"
good "three models"
grep -q "^$lr  *8 " models.out && grep -q "^$ci  *8 " models.out && grep -q "^$tn  *8 " models.out ||
    fail "a row per model with its batch" "$(seen)"
ok "one row per model, the column as wide as the longest spec"
[ "$(grep -c '"event":"bench"' b.jsonl)" -eq 3 ] || fail "three JSON objects" "$(cat b.jsonl)"
# the third: dense 64->16 (4096) and 8->4 (192), the low-rank 8->8 rank 2 inside:
# 2·(4·8 + 6·8) + 2·8·2 (dx) = 192
i=0
for want in 4576 4576 4480; do
    i=$((i + 1))
    line=$(sed -n "${i}p" b.jsonl)
    sps=$(json_field "$line" samples_per_s)
    gf=$(json_field "$line" gflops)
    awk -v s="$sps" -v g="$gf" -v w="$want" 'BEGIN { f = g * 1e9 / s; exit !(s > 0 && f > w - 0.5 && f < w + 0.5) }' ||
        fail "model $i: GFLOP/s over samples/s should be $want flops per sample" "$line"
    ok "model $i: $want counted flops per sample"
done

# --- --layers --kinds: fnet-compare's tensor-ring, Tucker and CP layers against dense ---------
run layers --layers --kinds tr,tucker,cp --seconds 0.01 --repeat 1 --threads 1 --json l.jsonl
good "--layers --kinds tr,tucker,cp"
for spec in 'tr:1024:rank=8:ring=2' 'tucker:1024:rank=10:in=32x32:out=32x32' 'cp:1024:rank=128'; do
    [ "$(grep -cE "^$spec \(1024x1024\) +(1|32|256) +[0-9.]+ +[0-9.]+ +[0-9.]+x " layers.out)" = 3 ] ||
        fail "--layers: a row of $spec per batch (1, 32, 256)" "$(seen)"
done
! grep -qE '^(lowrank|circ|sparse|1024x1024|FC6)' layers.out ||
    fail "--kinds tr,tucker,cp: no TT, low-rank, circulant or sparse rows" "$(seen)"
[ "$(grep -c '"event":"factored_layer"' l.jsonl)" = 9 ] && [ "$(wc -l <l.jsonl)" = 9 ] ||
    fail "--json: one object per layer and batch, nothing else" "$(show l.jsonl)"
# the kind, the full spec of the layer timed and its parameters (with the bias): ring 2 and
# ranks 8 on modes 32 per core, 2·32·8 + 8·32·8 + 8·32·8 + 8·32·2 = 5120; the 10^4 core and
# four 32x10 factors, 11,280; 128 terms of four 32-row factors, 16,384
for want in 'tr:tr:1024:ranks=8x8x8:ring=2:in=4x4x8x8:out=8x8x4x4:6144' \
    'tucker:tucker:1024:ranks=10x10x10x10:in=32x32:out=32x32:12304' \
    'cp:cp:1024:rank=128:in=32x32:out=32x32:17408'; do
    kind=${want%%:*}
    rest=${want#*:}
    spec=${rest%:*}
    params=${rest##*:}
    [ "$(grep -c "\"kind\":\"$kind\",\"spec\":\"$spec\",\"params\":$params,\"batch\":" l.jsonl)" = 3 ] ||
        fail "--json: kind $kind, spec $spec, $params parameters, at three batches" "$(show l.jsonl)"
done
ok "--layers --kinds tr,tucker,cp: three rows each, JSON with kind, spec and parameters"

# --- --svd: the host linear algebra's SVD on the backend and on the CPU, with its error ---------
run svd --svd 48 --repeat 1 --device reference --json svd.jsonl
good "--svd 48 on the reference backend"
grep -qE '^reference +reference +[0-9.]+ +[0-9.]+e-0[5-9]$' svd.out &&
    grep -qE '^cpu +cpu +[0-9.]+ +[0-9.]+e-0[5-9]$' svd.out ||
    fail "--svd: a row for the backend's and the CPU's SVD, each with a small error" "$(seen)"
python3 - svd.jsonl <<'PY' || fail "--svd --json: one svd object per backend" "$(seen)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["backend"] for r in rows] == ["reference", "cpu"], rows
assert all(r["event"] == "svd" and r["n"] == 48 and r["ms"] > 0 and r["rel_error"] < 1e-4
           for r in rows), rows
PY
ok "--svd: rows and JSON for the backend and the CPU"

# --- bad usage ----------------------------------------------------------------------------------
bad 2 'unknown option' "an unknown option" --frobnicate
bad 2 'seconds' "--seconds 0" --seconds 0
bad 2 'rank' "a rank above min(n_in, n_out)" --data data --model dense:16,lowrank:8:rank=9
bad 2 'block' "a block not dividing the sizes" --data data --model dense:16,circ:8:block=3
bad 2 'optimizer' "an unknown optimizer" --optim nope
bad 2 'rows of --layers' "--kinds without --layers" --kinds tr
bad 2 'svd' "--svd 0" --svd 0
bad 2 'cuda:1024: ' "--device cuda:1024 (no such GPU)" --device cuda:1024 --svd 8
bad 2 "got 'tr,nope'" "--kinds with an unknown name" --layers --kinds tr,nope
bad 2 'ring|r0' "a ring rank too wide for its bond" --data data --model dense:16,tr:16:rank=8

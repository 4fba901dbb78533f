#!/usr/bin/env bash
# shellcheck disable=SC2015  # "A && B || fail" is meant: fail when either is false
# End-to-end tests of fnet-compress on a tiny synthetic IDX dataset and checkpoints that
# fnet-train makes: TT-SVD, TR-SVD, Tucker (HOSVD, HOOI), CP-ALS and truncated SVD of the middle
# layer (the JSON line's fields, the parameters of the new layer counted from its shape, a full
# rank as accurate as the dense layer, a layer without bias, the Tucker error and the CP fit with
# its warning), magnitude pruning (one shot, rounds, per layer, stored as CSR),
# CSR of a pruned checkpoint, every saved model read back by fnet-train, --sweep with its table
# and plot (PNG and SVG; without gnuplot a warning), the same numbers twice for the same seed, and
# bad input (exit 2 for bad usage, 1 for a runtime error, one line "fnet-compress: error: <what>
# (<where>)", outputs checked before any fine-tuning, an existing --save left alone). Some
# seconds, also under ASan/UBSan.
#
# usage: test_fnet_compress.sh BIN_DIR MKIDX
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-compress "$@"

# near A B TOL: |A - B| <= TOL * max(1, |B|).
near() {
    awk -v a="$1" -v b="$2" -v t="$3" \
        'BEGIN { d = a - b; m = b < 0 ? -b : b; exit !((d < 0 ? -d : d) <= t * (m > 1 ? m : 1)) }'
}

# calc EXPR: an awk expression's value, to 12 digits.
calc() {
    awk "BEGIN { printf \"%.12g\", $1 }"
}

# in01 X: X is a number in [0, 1].
in01() {
    awk -v a="$1" 'BEGIN { exit !(a ~ /^[0-9.e+-]+$/ && a >= 0 && a <= 1) }'
}

# tt_params ITEM: the parameters of a TT or tensor-ring spec item
# (tt:N:ranks=R1xR2:in=...:out=...[:bias=0], tr:...:ring=R0:...): core k holds
# r[k-1]·in[k]·out[k]·r[k], r[0] = r[d] = 1 for a train and R0 for a ring, plus N for the bias.
tt_params() {
    printf '%s\n' "$1" | awk -F: '{
        n = $2; bias = 1; ring = 1
        for (i = 3; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "ranks") nr = split(kv[2], r, "x")
            if (kv[1] == "ring") ring = kv[2]
            if (kv[1] == "in") d = split(kv[2], m, "x")
            if (kv[1] == "out") split(kv[2], o, "x")
            if (kv[1] == "bias") bias = kv[2]
        }
        r[0] = ring; r[d] = ring; p = 0
        for (k = 1; k <= d; k++) p += r[k - 1] * m[k] * o[k] * r[k]
        print p + (bias ? n : 0) }'
}

# item SPEC K: the K-th item (from 0) of a comma-separated model spec.
item() {
    printf '%s\n' "$1" | cut -d, -f$(($2 + 1))
}

"$MKIDX" --side 8 --classes 4 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"
"$MKIDX" --side 4 --classes 4 data16 >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"

# --- the checkpoints: a trained one, a partly trained one, one without a middle bias ---------
MLP=dense:64,relu,dense:64,relu,dense:4 # 64*64+64 + 64*64+64 + 64*4+4 = 8580 parameters
fnet_train train --data data --model "$MLP" --epochs 3 --batch 20 --seed 2 --threads 2 --save d.st
good "setup: fnet-train $MLP --save d.st"
reload dload d.st
D_ACC=$(json_field "$FINAL" test_acc)
# one epoch of plain SGD: an accuracy well under 1, so that "as accurate as the dense model"
# means something
fnet_train train --data data --model "$MLP" --epochs 1 --batch 20 --optim sgd --lr 0.01 \
    --threads 2 --save w.st
good "setup: fnet-train $MLP --optim sgd --save w.st"
reload wload w.st
W_ACC=$(json_field "$FINAL" test_acc)
W_LOSS=$(json_field "$FINAL" test_loss)
awk -v a="$D_ACC" -v b="$W_ACC" 'BEGIN { exit !(a >= 0.9 && b >= 0.5 && b < 0.95) }' ||
    fail "setup: d.st should reach >= 0.9 ($D_ACC), w.st between 0.5 and 0.95 ($W_ACC)"
fnet_train train --data data --model dense:64,relu,dense:64:bias=0,relu,dense:4 --epochs 3 \
    --batch 20 --threads 2 --save nb.st
good "setup: a checkpoint whose middle layer has no bias"
fnet_train train --data data --model dense:64,relu,dense:4 --epochs 1 --batch 20 --threads 2 \
    --save two.st
good "setup: a checkpoint of two dense layers"
ok "checkpoints: d.st (test accuracy $D_ACC), w.st ($W_ACC), nb.st, two.st"

run help --help
good "--help"
for opt in --load --to --layers --rank --ring --ranks --eps --modes --hooi-iters --als-iters \
    --energy --sparsity --prune-scope --rounds --csr --finetune-epochs --optim --lr --batch \
    --sweep --plot --save --json --data --seed; do
    grep -q -- "$opt" help.out || fail "--help does not describe $opt" "$(seen)"
done
for kind in tt tr tucker cp lowrank prune csr; do
    grep -qE "^ +(--to KIND +)?$kind: " help.out || fail "--help does not describe --to $kind" "$(seen)"
done
ok "--help exits 0 and describes the options"
run version --version
good "--version"
grep -qE '^fnet-compress [0-9]+\.[0-9]+\.[0-9]+' version.out || fail "--version" "$(seen)"
ok "--version exits 0: $(head -n 1 version.out)"

COMMON=(--data data --batch 20 --threads 2)

# --- TT-SVD of the middle layer at rank 2, fine-tuned, saved ----------------------------------
run tt "${COMMON[@]}" --load d.st --to tt --rank 2 --json tt.json --save tt.st
good "--to tt --rank 2"
grep -q '^compressing layer 2 to TT-SVD$' tt.out ||
    fail "--to tt: the middle dense layer (2) is compressed by default" "$(seen)"
[ "$(grep -c '^  epoch ' tt.out)" = 2 ] || fail "--to tt: 2 fine-tuning epochs" "$(seen)"
[ "$(awk 'END { print NR }' tt.json)" = 1 ] || fail "--json: one line" "$(show tt.json)"
L=$(cat tt.json)
printf '%s\n' "$L" | grep -q '^{"event":"compress","to":"tt","model":"dense:64,relu,tt:64:ranks=2x2x2:in=[0-9x]*:out=[0-9x]*,relu,dense:4","layers":"2","optim":"adam","rank":2,' ||
    fail "--json: event, to, model (a TT layer of ranks 2 at position 2), layers, optim, rank" "$L"
SPEC=$(printf '%s\n' "$L" | sed 's/.*"model":"\([^"]*\)".*/\1/')
tp=$(tt_params "$(item "$SPEC" 2)")
[ "$(json_field "$L" params_before)" = 4160 ] ||
    fail "--json: params_before is the dense layer's 64*64+64 = 4160" "$L"
[ "$(json_field "$L" params_after)" = "$tp" ] ||
    fail "--json: params_after is the TT layer's cores and bias, $tp" "$L"
[ "$(json_field "$L" params)" = $((8580 - 4160 + tp)) ] ||
    fail "--json: params is the model's, 8580 - 4160 + $tp" "$L"
near "$(json_field "$L" compression)" "$(calc "4160 / $tp")" 1e-6 ||
    fail "--json: compression is params_before / params_after = 4160 / $tp" "$L"
[ "$(json_field "$L" dense_test_acc)" = "$D_ACC" ] ||
    fail "--json: dense_test_acc is what fnet-train reports for d.st ($D_ACC)" "$L"
[ "$(json_field "$L" finetune_epochs)" = 2 ] || fail "--json: finetune_epochs 2 (the default)" "$L"
A1=$(json_field "$L" test_acc_after_compression)
A2=$(json_field "$L" test_acc)
in01 "$A1" && in01 "$A2" || fail "--json: accuracies in [0, 1]" "$L"
awk -v d="$D_ACC" -v a="$A1" -v b="$A2" 'BEGIN { exit !(a <= d && b >= a) }' ||
    fail "rank 2: accuracy right after ($A1) at most the dense one ($D_ACC), fine-tuned ($A2) not below" "$L"
want=$(awk -v t="$tp" -v a="$A1" -v b="$A2" -v d="$D_ACC" \
    'BEGIN { printf "compression %.1fx; test accuracy %.4f before, %.4f right after, %.4f after 2 epochs of fine-tuning", 4160 / t, d, a, b }')
grep -qF "$SPEC: $((8580 - 4160 + tp)) parameters; $want" tt.out ||
    fail "the summary line: expected '$want'" "$(seen)"
ok "--to tt --rank 2: $SPEC, layer of $tp parameters, accuracy $D_ACC -> $A1 -> $A2"
grep -q '^saved tt.st$' tt.out || fail "--save: 'saved tt.st'" "$(seen)"
reload ttload tt.st
printf '%s\n' "$FINAL" | grep -qF "\"model\":\"$SPEC\"" ||
    fail "the saved checkpoint's spec is the compressed one" "$FINAL"
[ "$(item "$(printf '%s\n' "$FINAL" | sed 's/.*"model":"\([^"]*\)".*/\1/')" 2 | cut -d: -f1)" = tt ] ||
    fail "the saved checkpoint has a tt layer at position 2" "$FINAL"
for key in params test_acc test_loss; do
    [ "$(json_field "$FINAL" $key)" = "$(json_field "$L" $key)" ] ||
        fail "the saved checkpoint: fnet-train's $key differs from fnet-compress's" "$FINAL" "$L"
done
ok "--save: fnet-train loads the fine-tuned TT model: same spec, parameters, accuracy, loss"

# the same seed, the same numbers and the same checkpoint
run tt2 "${COMMON[@]}" --load d.st --to tt --rank 2 --json tt2.json --save tt2.st
good "--to tt --rank 2 again"
for key in model params params_after test_acc_after_compression test_acc test_loss; do
    [ "$(json_field "$(cat tt.json)" $key)" = "$(json_field "$(cat tt2.json)" $key)" ] ||
        fail "$key differs between two runs of the same seed" "$(cat tt.json)" "$(cat tt2.json)"
done
cmp -s tt.st tt2.st || fail "the two runs saved different checkpoints" "$(cmp tt.st tt2.st 2>&1)"
ok "a second run repeats every number and saves the same bytes"

# --- no fine-tuning; the truncated SVD; full ranks are exact -----------------------------------
run tt0 "${COMMON[@]}" --load w.st --to tt --rank 2 --finetune-epochs 0 --json tt0.json
good "--finetune-epochs 0"
L=$(cat tt0.json)
! grep -q '^  epoch ' tt0.out || fail "--finetune-epochs 0: an epoch ran" "$(seen)"
[ "$(json_field "$L" test_acc)" = "$(json_field "$L" test_acc_after_compression)" ] &&
    [ "$(json_field "$L" finetune_epochs)" = 0 ] && [ "$(json_field "$L" train_seconds)" = 0 ] ||
    fail "--finetune-epochs 0: test_acc is test_acc_after_compression, no training time" "$L"
[ "$(json_field "$L" dense_test_acc)" = "$W_ACC" ] ||
    fail "--json: dense_test_acc is what fnet-train reports for w.st ($W_ACC)" "$L"
ok "--finetune-epochs 0: the accuracy right after compression is the final one"

for r in 5 17; do
    run lr "${COMMON[@]}" --load w.st --to lowrank --rank $r --finetune-epochs 0 --json lr.json
    good "--to lowrank --rank $r"
    L=$(cat lr.json)
    printf '%s\n' "$L" | grep -q "\"to\":\"lowrank\",\"model\":\"dense:64,relu,lowrank:64:rank=$r,relu,dense:4\",\"layers\":\"2\",\"optim\":\"adam\",\"rank\":$r," ||
        fail "--to lowrank --rank $r: the spec" "$L"
    p=$((r * (64 + 64) + 64))
    [ "$(json_field "$L" params_after)" = $p ] && [ "$(json_field "$L" params)" = $((8580 - 4160 + p)) ] ||
        fail "--to lowrank --rank $r: U (64x$r), V ($r x64) and the bias: $p parameters" "$L"
done
ok "--to lowrank --rank R: R*(64+64)+64 parameters"

# full rank: U·V is W (up to float rounding), the accuracy is the dense model's
for args in "lowrank --rank 64" "tt --rank 64 --eps 1e-6" "tt --rank 1048576"; do
    # shellcheck disable=SC2086
    run full "${COMMON[@]}" --load w.st --to $args --finetune-epochs 0 --json full.json
    good "--to $args"
    L=$(cat full.json)
    [ "$(json_field "$L" test_acc_after_compression)" = "$W_ACC" ] ||
        fail "--to $args: the accuracy right after should be the dense model's $W_ACC" "$L"
    near "$(json_field "$L" test_loss)" "$W_LOSS" 1e-4 ||
        fail "--to $args: the test loss should be the dense model's $W_LOSS" "$L"
done
# the modes: the planner's factorization of 64 (2, 2, 4, 4), the largest in the middle on both
# sides; TT ranks cannot exceed the unfoldings' ranks, so a huge cap gives the full ranks
# min(2·2, 16·16) = 4, min(2·2·4·4, 4·4·2·2) = 64, 4
grep -q '"model":"dense:64,relu,tt:64:ranks=4x64x4:in=2x4x4x2:out=2x4x4x2,' full.json ||
    fail "--to tt --rank 1048576: middle-heavy modes 2x4x4x2, capped at the full ranks 4x64x4" \
        "$(show full.json)"
ok "full rank (lowrank 64, tt --eps 1e-6, tt at a huge rank): accuracy $W_ACC and loss kept"

# --modes IN:OUT instead of the default
run modes "${COMMON[@]}" --load w.st --to tt --rank 3 --modes 4x16:8x8 --finetune-epochs 0 \
    --json modes.json
good "--to tt --modes 4x16:8x8"
grep -q '"model":"dense:64,relu,tt:64:ranks=3:in=4x16:out=8x8,' modes.json ||
    fail "--modes 4x16:8x8: the TT layer has those modes" "$(show modes.json)"
ok "--modes: the TT-SVD's modes as given"

# --energy and --eps choose the rank: below the cap
run en "${COMMON[@]}" --load w.st --to lowrank --energy 0.5 --rank 64 --finetune-epochs 0 \
    --json en.json
good "--to lowrank --energy 0.5"
r=$(sed -n 's/.*lowrank:64:rank=\([0-9]*\),.*/\1/p' en.json)
[ -n "$r" ] && [ "$r" -lt 64 ] && [ "$(json_field "$(cat en.json)" params_after)" = $((r * 128 + 64)) ] ||
    fail "--energy 0.5: a rank under 64, its parameters" "$(show en.json)"
ok "--energy 0.5 chooses rank $r"

# explicit layers, the first and the last; a layer without bias gets none
run two "${COMMON[@]}" --load d.st --to lowrank --rank 3 --layers 0,4 --finetune-epochs 0 \
    --json two.json
good "--layers 0,4"
grep -q '^compressing layers 0, 4 to truncated SVD$' two.out || fail "--layers 0,4: named" "$(seen)"
L=$(cat two.json)
printf '%s\n' "$L" | grep -q '"model":"lowrank:64:rank=3,relu,dense:64,relu,lowrank:4:rank=3","layers":"0,4",' &&
    [ "$(json_field "$L" params_before)" = $((4160 + 260)) ] &&
    [ "$(json_field "$L" params_after)" = $((3 * 128 + 64 + 3 * 68 + 4)) ] ||
    fail "--layers 0,4: both layers, before 4160 + 260, after 3*(64+64)+64 + 3*(64+4)+4" "$L"
ok "--layers 0,4: the first and the last layer, parameters of both"
for t in tt tr tucker cp lowrank; do
    run nb "${COMMON[@]}" --load nb.st --to $t --rank 2 --finetune-epochs 0 --json nb.json \
        --save nb-$t.st
    good "--to $t of a layer without bias"
    L=$(cat nb.json)
    SPEC=$(printf '%s\n' "$L" | sed 's/.*"model":"\([^"]*\)".*/\1/')
    case $t in
    tt | tr) p=$(tt_params "$(item "$SPEC" 2)") ;;
    tucker) p=$((2 * 2 + 2 * 64 * 2)) ;; # the core and two factors (64, 2)
    cp) p=$((2 * (8 + 8 + 8 + 8))) ;;    # four factors (8, 2): modes 8x8 a side
    *) p=$((2 * 128)) ;;
    esac
    [[ $(item "$SPEC" 2) == *:bias=0 ]] && [ "$(json_field "$L" params_before)" = 4096 ] &&
        [ "$(json_field "$L" params_after)" = "$p" ] ||
        fail "--to $t of dense:64:bias=0: the new layer has no bias either ($p parameters)" "$L"
    reload nbload nb-$t.st
    [ "$(json_field "$FINAL" params)" = "$(json_field "$L" params)" ] ||
        fail "--to $t of a layer without bias: the saved model's parameters" "$FINAL" "$L"
done
ok "a layer without bias: its TT, TR, Tucker, CP and low-rank replacements have none"

# --- tensor ring, Tucker, CP: the spec, the parameters, the saved model ------------------------
# tucker_params ITEM: the parameters of a Tucker spec item (tucker:N:ranks=..:in=..:out=..): the
# core (the product of the ranks), each factor (its mode x its rank, the output modes first) and
# N for the bias.
tucker_params() {
    printf '%s\n' "$1" | awk -F: '{
        n = $2
        for (i = 3; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "ranks") nr = split(kv[2], r, "x")
            if (kv[1] == "in") ni = split(kv[2], a, "x")
            if (kv[1] == "out") no = split(kv[2], b, "x")
        }
        core = 1; f = 0
        for (k = 1; k <= nr; k++) core *= r[k]
        for (k = 1; k <= no; k++) f += b[k] * r[k]
        for (k = 1; k <= ni; k++) f += a[k] * r[no + k]
        print core + f + n }'
}
# compressed KIND ARGS...: run --to KIND ARGS on d.st with --json KIND.json --save KIND.st (2
# epochs of fine-tuning), then check the JSON line against the spec's parameter count PA (set by
# the caller's PARAMS function of the spec item) and that fnet-train loads and evaluates the
# saved model to the same accuracy and loss; sets L and SPEC.
compressed() {
    local kind=$1
    shift
    run "$kind" "${COMMON[@]}" --load d.st --to "$kind" "$@" --json "$kind.json" --save "$kind.st"
    good "--to $kind $*"
    [ "$(grep -c '^  epoch ' "$kind.out")" = 2 ] && grep -q "^saved $kind.st$" "$kind.out" ||
        fail "--to $kind: 2 fine-tuning epochs, saved" "$(seen)"
    L=$(cat "$kind.json")
    SPEC=$(printf '%s\n' "$L" | sed 's/.*"model":"\([^"]*\)".*/\1/')
    [ "$(item "$SPEC" 2 | cut -d: -f1)" = "$kind" ] || fail "--to $kind: a $kind layer at 2" "$L"
    PA=$($PARAMS "$(item "$SPEC" 2)")
    [ "$(json_field "$L" params_before)" = 4160 ] && [ "$(json_field "$L" params_after)" = "$PA" ] &&
        [ "$(json_field "$L" params)" = $((8580 - 4160 + PA)) ] ||
        fail "--to $kind: params_after is the layer's $PA (from its spec), params 8580 - 4160 + $PA" "$L"
    grep -qF "$SPEC: $((8580 - 4160 + PA)) parameters; compression" "$kind.out" ||
        fail "--to $kind: the summary line" "$(seen)"
    reload "${kind}load" "$kind.st"
    printf '%s\n' "$FINAL" | grep -qF "\"model\":\"$SPEC\"" ||
        fail "--to $kind: the saved checkpoint's spec is the compressed one" "$FINAL"
    for key in params test_acc test_loss; do
        [ "$(json_field "$FINAL" $key)" = "$(json_field "$L" $key)" ] ||
            fail "--to $kind: the saved model's $key differs from fnet-compress's" "$FINAL" "$L"
    done
}

PARAMS=tt_params
compressed tr --rank 2
grep -q '^compressing layer 2 to TR-SVD$' tr.out || fail "--to tr: TR-SVD of layer 2" "$(seen)"
printf '%s\n' "$L" | grep -q '^{"event":"compress","to":"tr","model":"dense:64,relu,tr:64:ranks=2x2x2:ring=2:in=[0-9x]*:out=[0-9x]*,relu,dense:4","layers":"2","optim":"adam","rank":2,"ring":2,' ||
    fail "--to tr --rank 2: ranks 2, the ring rank --rank's, in the JSON" "$L"
ok "--to tr --rank 2: $SPEC, $PA parameters, saved and read back by fnet-train"
compressed tr --rank 3 --ring 1 --modes 4x16:8x8
[[ $(item "$SPEC" 2) == tr:64:ranks=3:ring=1:in=4x16:out=8x8 ]] && [ "$(json_field "$L" ring)" = 1 ] ||
    fail "--to tr --ring 1 --modes 4x16:8x8: that ring rank and those modes" "$L"
ok "--to tr --ring 1 --modes 4x16:8x8: $SPEC"

PARAMS=tucker_params
compressed tucker --rank 3
grep -q '^compressing layer 2 to Tucker: truncated HOSVD, 2 HOOI sweeps$' tucker.out &&
    printf '%s\n' "$L" | grep -q '"model":"dense:64,relu,tucker:64:ranks=3x3:in=64:out=64,relu,dense:4","layers":"2","optim":"adam","rank":3,"rel_err":' ||
    fail "--to tucker --rank 3: Tucker-2 of ranks 3x3 by HOSVD and 2 HOOI sweeps" "$(seen)"
E=$(json_field "$L" rel_err)
grep -qF "layer 2 (64 -> 64): Tucker ranks 3x3, relative error $(awk -v e="$E" 'BEGIN { printf "%.4f", e }') (HOSVD, 2 HOOI sweeps)" tucker.out &&
    awk -v e="$E" 'BEGIN { exit !(e > 0 && e < 1) }' ||
    fail "--to tucker: the layer's relative error ($E) printed, in (0, 1)" "$(seen)"
ok "--to tucker --rank 3: $SPEC, $PA parameters, relative error $E"
# one rank per mode on tensorized modes; HOOI never increases the HOSVD's error
for h in 0 2; do
    run tk$h "${COMMON[@]}" --load w.st --to tucker --ranks 4x4x2x2 --modes 8x8:8x8 \
        --hooi-iters $h --finetune-epochs 0 --json tk$h.json
    good "--to tucker --ranks 4x4x2x2 --modes 8x8:8x8 --hooi-iters $h"
    L=$(cat tk$h.json)
    printf '%s\n' "$L" | grep -q '"model":"dense:64,relu,tucker:64:ranks=4x4x2x2:in=8x8:out=8x8,relu,dense:4","layers":"2","optim":"adam","ranks":"4x4x2x2","rel_err":' &&
        [ "$(json_field "$L" params_after)" = $((4 * 4 * 2 * 2 + 8 * 4 + 8 * 4 + 8 * 2 + 8 * 2 + 64)) ] ||
        fail "--ranks 4x4x2x2: those ranks, 64 + 96 + 64 parameters, \"ranks\" in the JSON" "$L"
    grep -qE "^layer 2 \(64 -> 64\): Tucker ranks 4x4x2x2, relative error [0-9.]+ \(HOSVD, $h HOOI sweeps\)$" tk$h.out ||
        fail "--hooi-iters $h: the ranks, the error and the sweeps printed" "$(seen)"
done
E0=$(json_field "$(cat tk0.json)" rel_err)
E2=$(json_field "$(cat tk2.json)" rel_err)
awk -v a="$E0" -v b="$E2" 'BEGIN { exit !(b <= a + 1e-6) }' ||
    fail "2 HOOI sweeps ($E2) should not raise the HOSVD's error ($E0)" "$(show tk2.out)"
ok "--ranks 4x4x2x2 --modes 8x8:8x8: HOSVD error $E0, after 2 HOOI sweeps $E2"

cp_params() { # ITEM: R·(the sum of the modes) + N, for cp:N:rank=R:in=..:out=..
    printf '%s\n' "$1" | awk -F: '{
        for (i = 3; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "rank") r = kv[2]
            if (kv[1] == "in" || kv[1] == "out") { k = split(kv[2], m, "x"); for (j = 1; j <= k; j++) s += m[j] }
        }
        print r * s + $2 }'
}
PARAMS=cp_params
# rank 1 of the trained layer: a poor fit, said on stderr, and the run goes on
compressed cp --rank 1 --als-iters 20
grep -q '^compressing layer 2 to CP: CP-ALS, at most 20 sweeps, seed 1$' cp.out &&
    printf '%s\n' "$L" | grep -q '"model":"dense:64,relu,cp:64:rank=1:in=8x8:out=8x8,relu,dense:4","layers":"2","optim":"adam","rank":1,"fit":' ||
    fail "--to cp --rank 1: CP of rank 1 on modes 8x8 a side, its fit in the JSON" "$(seen)"
F=$(json_field "$L" fit)
F2=$(awk -v f="$F" 'BEGIN { printf "%.2f", f }')
grep -qF "layer 2 (64 -> 64): CP rank 1, fit $(awk -v f="$F" 'BEGIN { printf "%.4f", f }') (CP-ALS, at most 20 sweeps)" cp.out ||
    fail "--to cp: the layer's fit printed" "$(seen)"
[ "$(wc -l <cp.err)" = 1 ] && awk -v f="$F" 'BEGIN { exit !(f < 0.5) }' &&
    grep -qxF "fnet-compress: warning: layer 2 (64 -> 64), --to cp rank 1: CP-ALS fit $F2 is poor (below 0.5): the rank is too small for this matrix, or raise --als-iters" cp.err ||
    fail "--to cp --rank 1: fit $F, one warning line on stderr" "$(seen)"
ok "--to cp --rank 1: fit $F, warned about on stderr, fine-tuned and saved all the same"
# CP of the matrix itself (one mode a side) at full rank: W again, no warning
run cpfull "${COMMON[@]}" --load w.st --to cp --rank 64 --modes 64:64 --finetune-epochs 0 \
    --json cpfull.json
good "--to cp --rank 64 --modes 64:64"
L=$(cat cpfull.json)
F=$(json_field "$L" fit)
[ ! -s cpfull.err ] && awk -v f="$F" 'BEGIN { exit !(f > 0.99) }' ||
    fail "--to cp at full rank: a fit near 1 ($F), no warning" "$(seen)"
awk -v a="$(json_field "$L" test_acc)" -v b="$W_ACC" 'BEGIN { d = a - b; exit !(d <= 0.01 && d >= -0.01) }' &&
    near "$(json_field "$L" test_loss)" "$W_LOSS" 1e-3 ||
    fail "--to cp at full rank: the dense model's accuracy $W_ACC and loss $W_LOSS" "$L"
ok "--to cp --rank 64 --modes 64:64: fit $F, no warning, the dense model's accuracy"

# full rank: W again, the bias carried over (the dense model's accuracy and loss)
for args in "tr --rank 32 --ring 2 --modes 8x8:8x8" "tucker --rank 64"; do
    # shellcheck disable=SC2086
    run full "${COMMON[@]}" --load w.st --to $args --finetune-epochs 0 --json full.json
    good "--to $args"
    L=$(cat full.json)
    [ "$(json_field "$L" test_acc_after_compression)" = "$W_ACC" ] &&
        near "$(json_field "$L" test_loss)" "$W_LOSS" 1e-4 ||
        fail "--to $args: the dense model's accuracy $W_ACC and loss $W_LOSS" "$L"
done
awk -v e="$(json_field "$L" rel_err)" 'BEGIN { exit !(e < 1e-5) }' ||
    fail "--to tucker --rank 64: relative error near 0" "$L"
ok "full rank (a ring of d = 2, Tucker-2 of rank 64): accuracy $W_ACC and loss kept"

# --sweep of ranks, every kind: a row per rank; tr's ring rank follows the rank
for kind in tr tucker cp; do
    run sw$kind "${COMMON[@]}" --load w.st --to $kind --sweep 1,2 --finetune-epochs 0 \
        --json sw$kind.json
    good "--to $kind --sweep 1,2"
    [ "$(grep -cE '^ +[12] +[0-9]+ +[0-9.]+x +[01]\.[0-9]{4} +[01]\.[0-9]{4} +[01]\.[0-9]{4}$' sw$kind.out)" = 2 ] &&
        [ "$(sed 's/.*"rank":\([0-9]*\),.*/\1/' sw$kind.json | tr '\n' ' ')" = "1 2 " ] ||
        fail "--to $kind --sweep 1,2: two table rows, two JSON lines" "$(seen)" "$(show sw$kind.json)"
    a=$(json_field "$(sed -n 1p sw$kind.json)" params_after)
    b=$(json_field "$(sed -n 2p sw$kind.json)" params_after)
    [ "$a" -lt "$b" ] || fail "--to $kind --sweep 1,2: more parameters at rank 2" "$(show sw$kind.json)"
done
[ "$(sed 's/.*"ring":\([0-9]*\),.*/\1/' swtr.json | tr '\n' ' ')" = "1 2 " ] ||
    fail "--to tr --sweep: the ring rank is each rank" "$(show swtr.json)"
poor=0
while read -r line; do
    awk -v f="$(json_field "$line" fit)" 'BEGIN { exit !(f < 0.5) }' && poor=$((poor + 1))
done <swcp.json
[ "$(grep -c 'warning: .*CP-ALS fit' swcp.err)" = $poor ] ||
    fail "--to cp --sweep: a warning per fit below 0.5 ($poor)" "$(seen)" "$(show swcp.json)"
ok "--to tr, tucker, cp --sweep 1,2: a row and a record per rank"

# --- magnitude pruning: 90% of the 64*64 + 64*64 + 64*4 = 8448 weights, biases kept -----------
run pr "${COMMON[@]}" --load d.st --to prune --sparsity 0.9 --json pr.json --save pr.st
good "--to prune --sparsity 0.9"
! grep -q '^compressing' pr.out || fail "--to prune: no layers to name" "$(seen)"
L=$(cat pr.json)
printf '%s\n' "$L" | grep -q "^{\"event\":\"compress\",\"to\":\"prune\",\"model\":\"$MLP\",\"layers\":\"\",\"optim\":\"adam\",\"sparsity\":0.9,\"params\":977,\"params_before\":8580,\"params_after\":977," ||
    fail "--json: to prune, sparsity 0.9, 8580 parameters of which 8580 - 7603 = 977 kept (stored)" "$L"
near "$(json_field "$L" compression)" "$(calc "8580 / 977")" 1e-6 ||
    fail "--json: compression 8580 / 977" "$L"
in01 "$(json_field "$L" test_acc)" && in01 "$(json_field "$L" test_acc_after_compression)" ||
    fail "--json: accuracies in [0, 1]" "$L"
reload prload pr.st
PR_ACC=$(json_field "$FINAL" test_acc)
PR_LOSS=$(json_field "$FINAL" test_loss)
grep -q '^pruned 7603 of 8448 weights (90.00%)$' prload.out &&
    [ "$(json_field "$FINAL" pruned)" = 7603 ] &&
    near "$(json_field "$FINAL" sparsity)" "$(calc "7603 / 8448")" 1e-9 ||
    fail "the saved model has round(0.9*8448) = 7603 of 8448 weights pruned" "$(seen)"
[ "$(json_field "$FINAL" test_acc)" = "$(json_field "$L" test_acc)" ] &&
    [ "$(json_field "$FINAL" test_loss)" = "$(json_field "$L" test_loss)" ] ||
    fail "the saved pruned model: fnet-train's accuracy and loss are fnet-compress's" "$FINAL" "$L"
ok "--to prune --sparsity 0.9: 7603 of 8448 weights pruned, saved with the mask"

# two rounds (2 fine-tuning epochs each), stored as CSR: 845 weights and 132 biases stored
run pr2 "${COMMON[@]}" --load d.st --to prune --sparsity 0.9 --rounds 2 --csr --json pr2.json \
    --save pr2.st
good "--to prune --rounds 2 --csr"
[ "$(grep -c '^  epoch ' pr2.out)" = 4 ] ||
    fail "--rounds 2: 2 rounds of 2 fine-tuning epochs" "$(seen)"
grep -q 'after 2 rounds of pruning and 2 fine-tuning epochs$' pr2.out ||
    fail "--rounds 2: the summary names the rounds" "$(seen)"
L=$(cat pr2.json)
SPEC=$(printf '%s\n' "$L" | sed 's/.*"model":"\([^"]*\)".*/\1/')
nnz=$(printf '%s\n' "$SPEC" |
    sed -n 's/^sparse:64:nnz=\([0-9]*\),relu,sparse:64:nnz=\([0-9]*\),relu,sparse:4:nnz=\([0-9]*\)$/\1 \2 \3/p' |
    awk '{ print $1 + $2 + $3 }')
[ "$nnz" = 845 ] && [ "$(json_field "$L" params)" = 977 ] && [ "$(json_field "$L" params_after)" = 977 ] ||
    fail "--csr: every layer stored as CSR, 8448 - 7603 = 845 weights, 977 parameters" "$L"
reload pr2load pr2.st
printf '%s\n' "$FINAL" | grep -qF "\"model\":\"$SPEC\",\"optim\":\"adam\",\"params\":977," &&
    [ "$(json_field "$FINAL" test_acc)" = "$(json_field "$L" test_acc)" ] ||
    fail "--csr: the saved model is the sparse one, with its accuracy" "$FINAL" "$L"
ok "--rounds 2 --csr: $SPEC"

# per layer: round(0.9*4096) = 3686 of each 64x64 layer, round(0.9*256) = 230 of the last
run prl "${COMMON[@]}" --load d.st --to prune --sparsity 0.9 --prune-scope layer --csr \
    --finetune-epochs 0 --json prl.json
good "--prune-scope layer"
grep -q '"model":"sparse:64:nnz=410,relu,sparse:64:nnz=410,relu,sparse:4:nnz=26",' prl.json ||
    fail "--prune-scope layer: nnz 4096-3686, 4096-3686, 256-230 per layer" "$(show prl.json)"
ok "--prune-scope layer: every layer pruned to 90% on its own"

# --- CSR of the pruned checkpoint: the same function, stored sparse ---------------------------
run csr "${COMMON[@]}" --load pr.st --to csr --finetune-epochs 0 --json csr.json --save csr.st
good "--to csr of a pruned checkpoint"
L=$(cat csr.json)
printf '%s\n' "$L" | grep -q '^{"event":"compress","to":"csr","model":"sparse:64:nnz=[0-9]*,relu,sparse:64:nnz=[0-9]*,relu,sparse:4:nnz=[0-9]*","layers":"","optim":"adam","params":977,"params_before":8580,"params_after":977,' ||
    fail "--to csr: every layer CSR, 977 of 8580 parameters stored, no rank or sparsity field" "$L"
[ "$(json_field "$L" test_acc)" = "$PR_ACC" ] && near "$(json_field "$L" test_loss)" "$PR_LOSS" 1e-5 ||
    fail "--to csr: the accuracy and loss of the pruned model ($PR_LOSS)" "$L"
reload csrload csr.st
[ "$(json_field "$FINAL" params)" = 977 ] && grep -q '^model sparse:64:nnz=' csrload.out ||
    fail "--to csr: the saved model is sparse" "$(seen)"
ok "--to csr: the pruned model stored as CSR computes what it computed"

# --- --sweep: a table, JSON lines, the plot ---------------------------------------------------
run sw "${COMMON[@]}" --load d.st --to tt --sweep 1,2,4 --finetune-epochs 1 --json sw.json --plot p
good "--sweep 1,2,4 --plot p"
[ "$(grep -cE '^ +[124] +[0-9]+ +[0-9.]+x +[01]\.[0-9]{4} +[01]\.[0-9]{4} +[01]\.[0-9]{4}$' sw.out)" = 3 ] &&
    grep -qE '^ +rank +params +compression +acc_before +acc_after +acc_tuned$' sw.out ||
    fail "--sweep: a header and one table row per rank" "$(seen)"
[ "$(sed 's/.*"rank":\([0-9]*\),.*/\1/' sw.json | tr '\n' ' ')" = "1 2 4 " ] ||
    fail "--sweep: one JSON line per rank, in order" "$(show sw.json)"
prev=0
for k in 1 2 3; do
    L=$(sed -n "${k}p" sw.json)
    r=$(json_field "$L" rank)
    pa=$(json_field "$L" params_after)
    SPEC=$(printf '%s\n' "$L" | sed 's/.*"model":"\([^"]*\)".*/\1/')
    [ "$pa" = "$(tt_params "$(item "$SPEC" 2)")" ] && [ "$pa" -gt "$prev" ] ||
        fail "--sweep: rank $r, $pa parameters from the cores, more than rank before's" "$L"
    prev=$pa
    if [ "$r" = 1 ]; then # rank 1 loses much of the accuracy, fine-tuning wins some back
        a=$(json_field "$L" test_acc_after_compression)
        b=$(json_field "$L" test_acc)
        awk -v d="$D_ACC" -v a="$a" -v b="$b" 'BEGIN { exit !(a < d - 0.1 && b > a) }' ||
            fail "rank 1: accuracy right after ($a) well below the dense $D_ACC, fine-tuned ($b) above" "$L"
    fi
    c=$(json_field "$L" compression)
    row=$(grep -E "^ +$r +" sw.out)
    printf '%s\n' "$row" | grep -qF "$(awk -v c="$c" 'BEGIN { printf "%.1fx", c }')" ||
        fail "--sweep: the table's compression for rank $r is the JSON's $c" "$row"
done
ok "--sweep 1,2,4: three rows, parameters growing with the rank; rank 1 fine-tuned back up"
[ "$(grep -vc '^#' p.dat)" = 3 ] || fail "--plot: p.dat has 3 data rows" "$(show p.dat)"
awk 'NR == FNR { if ($0 !~ /^#/) { x[++n] = $1; c[n] = $2; a[n] = $3; b[n] = $4 }; next }
     { match($0, /"compression":[^,]*/); jc = substr($0, RSTART + 14, RLENGTH - 14)
       match($0, /"test_acc_after_compression":[^,]*/); ja = substr($0, RSTART + 29, RLENGTH - 29)
       match($0, /"test_acc":[^,]*/); jb = substr($0, RSTART + 11, RLENGTH - 11)
       k++; d = c[k] - jc; if (d < 0) d = -d
       if (x[k] != (k == 3 ? 4 : k) || d > 1e-5 * jc || a[k] - ja > 1e-6 || ja - a[k] > 1e-6 ||
           b[k] - jb > 1e-6 || jb - b[k] > 1e-6) bad = 1 }
     END { exit bad || k != 3 }' p.dat sw.json ||
    fail "--plot: p.dat's rank, compression and accuracies are the JSON's" "$(show p.dat)" \
        "$(show sw.json)"
if command -v gnuplot >/dev/null; then
    [ -s p.png ] && [ -s p.svg ] && [ -s p.gp ] || fail "--plot p: p.png, .svg, .gp" "$(ls -l)"
    [ "$(head -c 8 p.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
        fail "p.png is not a PNG" "$(ls -l p.png)"
    grep -q '<svg' p.svg && grep -q 'compression of the compressed layers' p.svg &&
        grep -q 'test accuracy' p.svg && grep -q 'right after compression' p.svg &&
        grep -q 'dense (before)' p.svg || fail "p.svg: axis labels and legend" "$(head -c 400 p.svg)"
    grep -q '^plot: p.png, p.svg$' sw.out || fail "the plot's path is printed" "$(seen)"
    ok "--plot: p.dat with the JSON's numbers; PNG and SVG with labelled axes"
else
    ok "--plot: p.dat with the JSON's numbers (gnuplot is not installed: no PNG, SVG)"
fi
run swp "${COMMON[@]}" --load d.st --to prune --sweep 0.5,0.9 --finetune-epochs 0 --json swp.json
good "--to prune --sweep 0.5,0.9"
[ "$(sed 's/.*"sparsity":\([^,]*\),"params":\([0-9]*\),"params_before":8580,"params_after":\2,.*/\1:\2/' swp.json | tr '\n' ' ')" = "0.5:4356 0.9:977 " ] ||
    fail "--sweep of sparsities: 8580 - 4224 and 8580 - 7603 kept" "$(show swp.json)"
grep -qE '^ +sparsity +params ' swp.out || fail "--sweep of sparsities: the table's header" "$(seen)"
ok "--to prune --sweep 0.5,0.9: 4356 and 977 parameters kept"

# without gnuplot: the table, the data and the script, one warning, exit 0
mkdir nognuplot
ln -s "$(command -v env)" nognuplot/env
PATH=$WORK/nognuplot "$PROG_PATH" "${COMMON[@]}" --load d.st --to tt --sweep 1,2 \
    --finetune-epochs 0 --plot p2 >nog.out 2>nog.err </dev/null
RC=$?
LAST=nog
no_sanitizer "without gnuplot"
[ "$RC" -eq 0 ] || fail "without gnuplot: exit 0" "$(seen)"
[ "$(wc -l <nog.err)" = 1 ] && grep -q '^fnet-compress: warning: gnuplot is not installed' nog.err ||
    fail "without gnuplot: one warning line" "$(seen)"
[ "$(grep -cE '^ +[12] +[0-9]+ +[0-9.]+x ' nog.out)" = 2 ] && [ -s p2.dat ] && [ -s p2.gp ] &&
    [ ! -e p2.png ] || fail "without gnuplot: the table, the data and the script" "$(seen)"
ok "without gnuplot: the table, the plot's data and script, one warning"

# --- bad input: one line, nothing fine-tuned ------------------------------------------------
head -c 3000 /dev/urandom >random.st
# safetensors: an 8-byte little-endian header length, the JSON header, the data
st_file() { # FILE HEADER: a safetensors file of one 2x2 float tensor
    local h=$2
    {
        printf '%b' "$(printf '\\0%03o' $((${#h} % 256)) $((${#h} / 256)) 0 0 0 0 0 0)"
        printf '%s' "$h"
        head -c 16 /dev/zero
    } >"$1"
}
st_file plain.st '{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
st_file torch.st '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
bad 1 'safetensors|format' "a random file" --data data --load random.st --to tt
bad 1 'not a factornet checkpoint' "a safetensors file without metadata" --data data \
    --load plain.st --to tt
bad 1 "'pt', expected 'factornet'" "a safetensors file of another format" --data data \
    --load torch.st --to tt
bad 1 'no such file|cannot open' "a missing checkpoint" --data data --load nosuch.st --to tt
bad 1 '64 inputs but the data has 16' "data of another size" --data data16 --load d.st --to tt
bad 1 'no-such-dir|cannot open' "a missing data directory" --data no-such-dir --load d.st --to tt
bad 2 'layers 0 to 4' "--layers 9 (out of range)" --data data --load d.st --to tt --layers 9
bad 2 'layer 1 .* is relu, not a dense layer' "--layers 1 (an activation)" --data data \
    --load d.st --to tt --layers 1
bad 2 'named twice' "a layer named twice" --data data --load d.st --to tt --layers 2,2
bad 2 'integer' "--layers that are not numbers" --data data --load d.st --to tt --layers x
bad 2 'no dense layer between its first and last' "a model with no middle layer" --data data \
    --load two.st --to tt
bad 2 "expected tt, tr, tucker, cp, lowrank, prune or csr, got 'bogus'" "--to bogus" --data data \
    --load d.st --to bogus
bad 2 'model to compress is required' "no --load" --data data --to tt
bad 2 'tt, tr, tucker, cp, lowrank, prune or csr' "no --to" --data data --load d.st
bad 2 'rank' "--rank 0" --data data --load d.st --to tt --rank 0
bad 2 'lowrank: --energy|--rank, --eps' "--eps with --to lowrank" --data data --load d.st --to lowrank --eps 0.1
bad 2 'tt, tr: --eps' "--energy with --to tt" --data data --load d.st --to tt --energy 0.9
bad 2 'is for --to lowrank' "--energy with --to cp" --data data --load d.st --to cp --energy 0.9
bad 2 'is for --to tt and tr' "--eps with --to tucker" --data data --load d.st --to tucker \
    --eps 0.1
bad 2 'is for --to tt, tr, tucker and cp' "--modes with --to lowrank" --data data --load d.st \
    --to lowrank --modes 8x8:8x8
bad 2 'IN:OUT' "--modes without the output modes" --data data --load d.st --to tt --modes 8x8
bad 2 'as many input as output' "--modes of two lengths" --data data --load d.st --to tt \
    --modes 8x8:4x4x4
bad 2 'mode|size|product|64' "--modes whose product is not the size" --data data --load d.st \
    --to tt --modes 8x4:8x8
bad 2 'as many input as output' "--to tr --modes of two lengths" --data data --load d.st \
    --to tr --modes 8x8:64
bad 2 'at most 8 modes in all' "--to tucker --modes of 9 modes" --data data --load d.st \
    --to tucker --modes 4x4x4:2x2x2x2x2x2
bad 2 'out modes multiply to 32, not the output size 64' "--to cp --modes of a wrong product" \
    --data data --load d.st --to cp --modes 8x8:4x8
bad 2 '(--ring|is for --to tr)' "--ring with --to tucker" --data data --load d.st --to tucker \
    --ring 2
bad 2 'is for --to tr' "--ring with --to prune" --data data --load d.st --to prune --ring 2
bad 2 'integer' "--ring 0" --data data --load d.st --to tr --ring 0
bad 2 'is for --to tucker \(the others: --rank\)' "--ranks with --to tr" --data data --load d.st \
    --to tr --ranks 2x2
bad 2 'not with --rank' "--ranks with --rank" --data data --load d.st --to tucker --rank 2 \
    --ranks 2x2
bad 2 'joined by x' "--ranks that are not numbers" --data data --load d.st --to tucker --ranks 2xa
bad 2 '3 ranks given' "--ranks of the wrong count (Tucker-2 takes 2)" --data data --load d.st \
    --to tucker --ranks 2x2x2
bad 2 'rank.*64' "--ranks over a mode's size" --data data --load d.st --to tucker --ranks 65x2
bad 2 '--hooi-iters.*is for --to tucker|is for --to tucker.*--hooi-iters' "--hooi-iters with --to cp" \
    --data data --load d.st --to cp --hooi-iters 1
bad 2 '--als-iters.*is for --to cp|is for --to cp.*--als-iters' "--als-iters with --to tucker" \
    --data data --load d.st --to tucker --als-iters 5
bad 2 'integer' "--als-iters 0" --data data --load d.st --to cp --als-iters 0
bad 2 'integer' "--hooi-iters -1" --data data --load d.st --to tucker --hooi-iters -1
bad 2 'needs --ring' "--to tr --eps without --rank or --ring" --data data --load d.st --to tr \
    --eps 0.3
# the ring rank is --rank's unless --ring gives it: the library's r0, named in the context
bad 2 'ring rank 64 does not fit bond 1 .* ring rank r0 = --rank = 64' \
    "--to tr --rank 64 (a ring too wide)" \
    --data data --load d.st --to tr --rank 64
bad 2 'for --to tt, tr, tucker, cp and lowrank' "--rank with --to prune" --data data --load d.st \
    --to prune --rank 4
bad 2 'for --to tt, tr, tucker, cp and lowrank' "--layers with --to prune" --data data \
    --load d.st --to prune --layers 2
bad 2 'are for --to prune' "--sparsity with --to tt" --data data --load d.st --to tt \
    --sparsity 0.5
bad 2 'are for --to prune' "--csr with --to lowrank" --data data --load d.st --to lowrank --csr
bad 2 'fine-tuning epochs between' "--rounds 2 without fine-tuning" --data data --load d.st \
    --to prune --rounds 2 --finetune-epochs 0
bad 2 '0, 0.9999' "--sparsity 1" --data data --load d.st --to prune --sparsity 1
bad 2 'not with --sweep' "--save with --sweep" --data data --load d.st --to tt --sweep 1,2 \
    --save s.st
bad 2 'plots a --sweep' "--plot without --sweep" --data data --load d.st --to tt --plot p3
bad 2 'nothing to sweep' "--sweep with --to csr" --data data --load pr.st --to csr --sweep 1
bad 2 'not with --rank' "--sweep with --rank" --data data --load d.st --to tt --sweep 1,2 --rank 3
bad 2 'not with --rank, --ranks' "--sweep with --ranks" --data data --load d.st --to tucker \
    --sweep 1,2 --ranks 2x2
bad 2 'not with --rank' "--sweep with --sparsity" --data data --load d.st --to prune \
    --sweep 0.5 --sparsity 0.9
# a rank the library refuses comes after the checks of the command line: an earlier --json
# file stays as it was
printf 'earlier\n' >keep.json
bad 2 'rank' "a rank the layer cannot take, with --json" --data data --load d.st --to lowrank \
    --rank 100 --json keep.json
[ "$(cat keep.json)" = earlier ] || fail "a late usage error emptied the --json file" "$(cat keep.json)"
bad 2 'not with --eps' "--sweep with --eps" --data data --load d.st --to tt --sweep 1,2 --eps 0.1
bad 2 'integer' "--sweep 0 of ranks" --data data --load d.st --to tt --sweep 0,2
bad 2 'unknown option' "an unknown option" --data data --load d.st --to tt --bogus
bad 2 "got 'lbfgs'" "a solver for fine-tuning" --data data --load d.st --to tt --optim lbfgs
# the library's own limit, in the user's words
bad 2 'rank 65 is outside 1..min\(n_in, n_out\) = 64.*layer 2' "a rank over the layer's" \
    --data data --load d.st --to lowrank --rank 65
bad 1 'more than half zero: prune it first' "--to csr of an unpruned model" --data data \
    --load d.st --to csr
bad 1 'no weights to prune' "--to prune of a model stored as CSR" --data data --load csr.st \
    --to prune
bad 2 'pruned already, more than 0.5' "a sparsity under the checkpoint's" --data data \
    --load pr.st --to prune --sparsity 0.5
ok "bad checkpoints, layers and combinations: refused with one line"
# outputs: checked after loading, before any fine-tuning
for o in --save --json; do
    bad 1 "cannot|no-such-dir" "an unwritable $o" "${COMMON[@]}" --load d.st --to tt --rank 2 \
        $o no-such-dir/x.st
    ! grep -q '^  epoch ' bad.out || fail "an unwritable $o: fine-tuned first" "$(seen)"
done
bad 1 "cannot|no-such-dir" "an unwritable --plot" "${COMMON[@]}" --load d.st --to tt \
    --sweep 1,2 --plot no-such-dir/p
! grep -q '^  epoch ' bad.out || fail "an unwritable --plot: fine-tuned first" "$(seen)"
# a run that fails leaves an existing --save as it was
cp w.st keep.st
bad 1 'prune it first' "a failing run with --save" --data data --load d.st --to csr --save keep.st
cmp -s keep.st w.st || fail "a failing run changed its --save target" "$(cmp keep.st w.st 2>&1)"
cp w.st keep.st
chmod a-w keep.st
if ! [ -w keep.st ]; then # root writes anyway
    bad 1 'cannot' "a read-only --save" "${COMMON[@]}" --load d.st --to tt --save keep.st
    cmp -s keep.st w.st || fail "a read-only --save: its content changed" "$(cmp keep.st w.st 2>&1)"
fi
ok "unwritable outputs are refused before fine-tuning; an existing --save is left alone"

# SIGINT while fine-tuning
interrupted INT '^  epoch +1/100000' "SIGINT while fine-tuning" \
    --data data --load d.st --to lowrank --rank 4 --finetune-epochs 100000 --batch 20 --threads 2
grep -q "fine-tuning: stopped on request" interrupted.err || fail "SIGINT: where" "$(seen)"

echo "all $n checks passed"

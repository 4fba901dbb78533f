#!/usr/bin/env bash
# shellcheck disable=SC2015  # "A && B || fail" is meant: fail when either is false
# End-to-end tests of fnet-compress on a tiny synthetic IDX dataset and checkpoints that
# fnet-train makes: TT-SVD and truncated SVD of the middle layer (the JSON line's fields, the
# parameters of the new layer counted from its shape, a full rank as accurate as the dense
# layer, a layer without bias), magnitude pruning (one shot, rounds, per layer, stored as CSR),
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

# tt_params ITEM: the parameters of a TT spec item (tt:N:ranks=R1xR2:in=...:out=...[:bias=0]):
# core k holds r[k-1]·in[k]·out[k]·r[k], plus N for the bias.
tt_params() {
    printf '%s\n' "$1" | awk -F: '{
        n = $2; bias = 1
        for (i = 3; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "ranks") nr = split(kv[2], r, "x")
            if (kv[1] == "in") d = split(kv[2], m, "x")
            if (kv[1] == "out") split(kv[2], o, "x")
            if (kv[1] == "bias") bias = kv[2]
        }
        r[0] = 1; r[d] = 1; p = 0
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
for opt in --load --to --layers --rank --eps --energy --sparsity --prune-scope --rounds --csr \
    --finetune-epochs --optim --lr --batch --sweep --plot --save --json --data --seed; do
    grep -q -- "$opt" help.out || fail "--help does not describe $opt" "$(seen)"
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
for t in tt lowrank; do
    run nb "${COMMON[@]}" --load nb.st --to $t --rank 2 --finetune-epochs 0 --json nb.json \
        --save nb-$t.st
    good "--to $t of a layer without bias"
    L=$(cat nb.json)
    SPEC=$(printf '%s\n' "$L" | sed 's/.*"model":"\([^"]*\)".*/\1/')
    case $t in
    tt) p=$(tt_params "$(item "$SPEC" 2)") ;;
    *) p=$((2 * 128)) ;;
    esac
    [[ $(item "$SPEC" 2) == *:bias=0 ]] && [ "$(json_field "$L" params_before)" = 4096 ] &&
        [ "$(json_field "$L" params_after)" = "$p" ] ||
        fail "--to $t of dense:64:bias=0: the new layer has no bias either ($p parameters)" "$L"
    reload nbload nb-$t.st
    [ "$(json_field "$FINAL" params)" = "$(json_field "$L" params)" ] ||
        fail "--to $t of a layer without bias: the saved model's parameters" "$FINAL" "$L"
done
ok "a layer without bias: its TT and low-rank replacements have none"

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
bad 2 "expected tt, lowrank, prune or csr, got 'bogus'" "--to bogus" --data data --load d.st \
    --to bogus
bad 2 'model to compress is required' "no --load" --data data --to tt
bad 2 'tt, lowrank, prune or csr' "no --to" --data data --load d.st
bad 2 'rank' "--rank 0" --data data --load d.st --to tt --rank 0
bad 2 'lowrank: --energy|--rank, --eps' "--eps with --to lowrank" --data data --load d.st --to lowrank --eps 0.1
bad 2 'tt: --eps' "--energy with --to tt" --data data --load d.st --to tt --energy 0.9
bad 2 'is for --to tt' "--modes with --to lowrank" --data data --load d.st --to lowrank \
    --modes 8x8:8x8
bad 2 'IN:OUT' "--modes without the output modes" --data data --load d.st --to tt --modes 8x8
bad 2 'as many input as output' "--modes of two lengths" --data data --load d.st --to tt \
    --modes 8x8:4x4x4
bad 2 'mode|size|product|64' "--modes whose product is not the size" --data data --load d.st \
    --to tt --modes 8x4:8x8
bad 2 'for --to tt and lowrank' "--rank with --to prune" --data data --load d.st --to prune \
    --rank 4
bad 2 'for --to tt and lowrank' "--layers with --to prune" --data data --load d.st --to prune \
    --layers 2
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

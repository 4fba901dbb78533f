#!/usr/bin/env bash
# shellcheck disable=SC2015  # "A && B || fail" is meant: fail when either is false
# End-to-end tests of fnet-prune on a tiny synthetic IDX dataset: a network trained and pruned
# step by step (the JSON lines: the dense model, then one object per sparsity, at the asked
# sparsity to the weight; the table; the saved model read back by fnet-train), a checkpoint of
# fnet-train pruned without training, per-layer pruning counted layer by layer, the plot (PNG and
# SVG; without gnuplot a warning), the same numbers twice for the same seed, and bad input (exit
# 2 for bad usage, 1 for a runtime error, one line "fnet-prune: error: <what> (<where>)", outputs
# checked before training, an existing --save left alone). Some seconds, also under ASan/UBSan.
#
# usage: test_fnet_prune.sh BIN_DIR MKIDX
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-prune "$@"

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

"$MKIDX" --side 8 --classes 4 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"

run help --help
good "--help"
for opt in --model --load --sparsities --finetune-epochs --finetune-lr-scale --prune-scope \
    --optim --lr --batch --epochs --plot --json --save --data --seed --threads; do
    grep -q -- "$opt" help.out || fail "--help does not describe $opt" "$(seen)"
done
ok "--help exits 0 and describes the options"
run version --version
good "--version"
grep -qE '^fnet-prune [0-9]+\.[0-9]+\.[0-9]+' version.out || fail "--version" "$(seen)"
ok "--version exits 0: $(head -n 1 version.out)"

# --- a network trained, then pruned to 50%, 80% and 95% -----------------------------------------
# 64x64 + 64x32 + 32x4 = 6,272 prunable weights, 6,372 parameters with the biases; plain SGD at
# a low rate, so that pruning costs accuracy and the differences to the dense model mean something
MODEL=dense:64,relu,dense:32,relu,dense:4
N=6272
TOTAL=6372
ARGS=(--data data --model "$MODEL" --epochs 3 --batch 20 --optim sgd --lr 0.003 --threads 2)
run first "${ARGS[@]}" --sparsities 0.5,0.8,0.95 --finetune-epochs 1 --json j --plot p --save s.st
good "training $MODEL and pruning it to 0.5, 0.8, 0.95"
grep -q "^$MODEL: $TOTAL parameters, $N prunable weights; 1000 training, 200 test samples; " first.out ||
    fail "the first line: the model, its parameters and prunable weights, the data" "$(seen)"
grep -q '^training: sgd lr 0.003, batch 20, 3 epochs$' first.out || fail "the training line" "$(seen)"
[ "$(grep -c '^  epoch ' first.out)" = 6 ] ||
    fail "3 training epochs, then 1 fine-tuning epoch per sparsity" "$(seen)"
grep -q '^sparsity 0.8 (global, then 1 fine-tuning epoch at lr 0.0009)$' first.out ||
    fail "fine-tuning at 0.3 times the rate (--finetune-lr-scale's default)" "$(seen)"
ok "trained for 3 epochs, each step fine-tuned for 1 at lr 0.0009"
[ "$(awk 'END { print NR }' j)" = 4 ] && [ "$(sed 's/^{"event":"\([a-z]*\)".*/\1/' j | tr '\n' ' ')" = "dense prune prune prune " ] ||
    fail "--json: a dense line, then one prune line per sparsity" "$(show j)"
D=$(head -n 1 j)
printf '%s\n' "$D" | grep -q "^{\"event\":\"dense\",\"model\":\"$MODEL\",\"params\":$TOTAL,\"sparsity\":0," ||
    fail "--json: the dense model, its parameters, sparsity 0" "$D"
DACC=$(json_field "$D" test_acc)
in01 "$DACC" && awk -v a="$DACC" 'BEGIN { exit !(a >= 0.5) }' ||
    fail "the dense model learnt: test accuracy $DACC (expected >= 0.5)" "$D"
k=1
for s in 0.5 0.8 0.95; do
    k=$((k + 1))
    L=$(sed -n "${k}p" j)
    pruned=$(calc "int($s * $N + 0.5)")
    printf '%s\n' "$L" | grep -q "^{\"event\":\"prune\",\"model\":\"$MODEL\",\"scope\":\"global\",\"sparsity\":" ||
        fail "--json: event, model and scope of sparsity $s" "$L"
    near "$(json_field "$L" sparsity)" "$(calc "$pruned / $N")" 1e-9 ||
        fail "--json: sparsity $s is round($s*$N)/$N = $pruned/$N" "$L"
    [ "$(json_field "$L" params)" = $((TOTAL - pruned)) ] ||
        fail "--json: params at sparsity $s is $TOTAL - $pruned" "$L"
    [ "$(json_field "$L" finetune_epochs)" = 1 ] || fail "--json: finetune_epochs 1" "$L"
    a=$(json_field "$L" test_acc_after_pruning)
    b=$(json_field "$L" test_acc)
    in01 "$a" && in01 "$b" || fail "--json: accuracies in [0, 1] at sparsity $s" "$L"
    near "$(json_field "$L" acc_diff)" "$(calc "$b - $DACC")" 1e-9 ||
        fail "--json: acc_diff is test_acc - the dense model's $DACC" "$L"
    # the table: the step's row as the JSON says
    row=$(awk -v s="$s" '$1 == s' first.out)
    want=$(awk -v s="$s" -v p=$((TOTAL - pruned)) -v a="$a" -v b="$b" -v d="$DACC" \
        'BEGIN { printf "%9s %12d %11.4f %11.4f %+11.2f", s, p, a, b, 100 * (b - d) }')
    [ "$row" = "$want" ] || fail "the table's row for $s: expected '$want'" "$row"
done
grep -qE "^ +dense +$TOTAL +- +$(awk -v a="$DACC" 'BEGIN { printf "%.4f", a }') +-$" first.out ||
    fail "the table's dense row" "$(seen)"
[ "$(json_field "$D" train_seconds)" != 0 ] || fail "--json: the dense model's training time" "$D"
ok "JSON and table: sparsities round(s*$N)/$N, parameters kept, accuracies, acc_diff"
grep -q '^saved s.st$' first.out || fail "--save: 'saved s.st'" "$(seen)"
reload sload s.st
L=$(tail -n 1 j)
printf '%s\n' "$FINAL" | grep -qF "\"model\":\"$MODEL\",\"optim\":\"adam\",\"params\":$TOTAL,\"pruned\":$(calc "int(0.95 * $N + 0.5)")," &&
    [ "$(json_field "$FINAL" sparsity)" = "$(json_field "$L" sparsity)" ] &&
    [ "$(json_field "$FINAL" test_acc)" = "$(json_field "$L" test_acc)" ] &&
    [ "$(json_field "$FINAL" test_loss)" = "$(json_field "$L" test_loss)" ] ||
    fail "--save: fnet-train reads the last sparsity, accuracy and loss back" "$FINAL" "$L"
ok "--save: the model at the last sparsity, as fnet-train reads it"

if command -v gnuplot >/dev/null; then
    [ -s p.png ] && [ -s p.svg ] && [ -s p.gp ] || fail "--plot p: p.png, .svg, .gp" "$(ls -l)"
    [ "$(head -c 8 p.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
        fail "p.png is not a PNG" "$(ls -l p.png)"
    grep -q '<svg' p.svg && grep -q 'weights kept' p.svg && grep -q 'test accuracy' p.svg &&
        grep -q 'right after pruning' p.svg && grep -q 'after 1 fine-tuning epoch' p.svg ||
        fail "p.svg: axis labels and legend" "$(head -c 400 p.svg)"
    grep -q '^plot: p.png, p.svg$' first.out || fail "the plot's path is printed" "$(seen)"
fi
# p.dat: sparsity, percent kept, the two accuracies of every step
[ "$(grep -vc '^#' p.dat)" = 3 ] || fail "--plot: p.dat has 3 data rows" "$(show p.dat)"
awk 'NR == FNR { if ($0 !~ /^#/) { s[++n] = $1; kept[n] = $2; a[n] = $3; b[n] = $4 }; next }
     /"event":"prune"/ {
       match($0, /"test_acc_after_pruning":[^,]*/); ja = substr($0, RSTART + 25, RLENGTH - 25)
       match($0, /"test_acc":[^,]*/); jb = substr($0, RSTART + 11, RLENGTH - 11)
       k++; want = k == 1 ? 0.5 : k == 2 ? 0.8 : 0.95
       d = kept[k] - 100 * (1 - want); if (d < 0) d = -d
       if (s[k] != want || d > 1e-9 || a[k] - ja > 1e-6 || ja - a[k] > 1e-6 ||
           b[k] - jb > 1e-6 || jb - b[k] > 1e-6) bad = 1 }
     END { exit bad || k != 3 }' p.dat j ||
    fail "--plot: p.dat's sparsities, percent kept and accuracies are the JSON's" "$(show p.dat)" \
        "$(show j)"
ok "--plot: p.dat with the JSON's numbers$(command -v gnuplot >/dev/null && echo "; PNG and SVG with labelled axes")"

# the same seed: the same numbers and the same checkpoint
run again "${ARGS[@]}" --sparsities 0.5,0.8,0.95 --finetune-epochs 1 --json j2 --save s2.st
good "the same run again"
for key in params sparsity test_acc_after_pruning test_acc test_loss acc_diff; do
    a=$(sed -n "s/.*\"$key\":\([^,}]*\).*/\1/p" j | tr '\n' ' ')
    b=$(sed -n "s/.*\"$key\":\([^,}]*\).*/\1/p" j2 | tr '\n' ' ')
    [ "$a" = "$b" ] || fail "$key differs between two runs of the same seed: $a / $b" \
        "$(show j)" "$(show j2)"
done
cmp -s s.st s2.st || fail "the two runs saved different checkpoints" "$(cmp s.st s2.st 2>&1)"
ok "a second run repeats every number and saves the same bytes"

# --- a checkpoint of fnet-train: no training, its accuracy as fnet-train reports it ---------------
fnet_train train --data data --model "$MODEL" --epochs 1 --batch 20 --optim sgd --lr 0.01 \
    --threads 2 --save w.st
good "setup: fnet-train $MODEL --save w.st"
reload wload w.st
W_ACC=$(json_field "$FINAL" test_acc)
run load --data data --load w.st --sparsities 0.5,0.9 --finetune-epochs 1 --batch 20 \
    --threads 2 --json l.json
good "--load w.st"
! grep -q '^training:' load.out || fail "--load: no training" "$(seen)"
[ "$(grep -c '^  epoch ' load.out)" = 2 ] || fail "--load: only the 2 fine-tuning epochs" "$(seen)"
D=$(head -n 1 l.json)
printf '%s\n' "$D" | grep -q "^{\"event\":\"dense\",\"model\":\"$MODEL\",\"params\":$TOTAL,\"sparsity\":0," &&
    [ "$(json_field "$D" test_acc)" = "$W_ACC" ] && [ "$(json_field "$D" train_seconds)" = 0 ] ||
    fail "--load: the dense accuracy is fnet-train's $W_ACC, no training time" "$D"
grep -q "^dense: test accuracy $(awk -v a="$W_ACC" 'BEGIN { printf "%.4f", a }')$" load.out ||
    fail "--load: the dense accuracy printed" "$(seen)"
ok "--load: not trained again, dense accuracy $W_ACC as fnet-train reports"

# --- per layer: each layer pruned to 80% on its own ---------------------------------------------
# round(0.8*4096) = 3277, round(0.8*2048) = 1638, round(0.8*128) = 102: 5017 in all (global: 5018)
run layer "${ARGS[@]}" --sparsities 0.8 --prune-scope layer --finetune-epochs 0 --json lay.json \
    --save lay.st
good "--prune-scope layer"
grep -q '^sparsity 0.8 (layer, then 0 fine-tuning epochs at ' layer.out || fail "--prune-scope layer" "$(seen)"
L=$(tail -n 1 lay.json)
printf '%s\n' "$L" | grep -q '"scope":"layer",' && [ "$(json_field "$L" params)" = $((TOTAL - 5017)) ] &&
    near "$(json_field "$L" sparsity)" "$(calc "5017 / $N")" 1e-9 ||
    fail "--prune-scope layer: 3277 + 1638 + 102 = 5017 weights pruned" "$L"
[ "$(json_field "$L" test_acc)" = "$(json_field "$L" test_acc_after_pruning)" ] ||
    fail "--finetune-epochs 0: test_acc is the accuracy right after pruning" "$L"
! sed -n '/^sparsity/,$p' layer.out | grep -q '^  epoch ' || fail "--finetune-epochs 0: fine-tuned" "$(seen)"
# layer by layer: stored as CSR, each layer's nnz is what is left of it
reload layload lay.st --save-sparse --save lay-csr.st
grep -q '^saved sparse: 3 dense layers stored as CSR; model sparse:64:nnz=819,relu,sparse:32:nnz=410,relu,sparse:4:nnz=26, 1355 parameters$' layload.out ||
    fail "--prune-scope layer: 4096-3277, 2048-1638, 128-102 weights left per layer" "$(seen)"
ok "--prune-scope layer: 819, 410 and 26 weights left in the three layers"

# without gnuplot: the table, the data and the script, one warning, exit 0
mkdir nognuplot
ln -s "$(command -v env)" nognuplot/env
PATH=$WORK/nognuplot "$PROG_PATH" --data data --load w.st --sparsities 0.5 --finetune-epochs 0 \
    --threads 2 --plot p2 >nog.out 2>nog.err </dev/null
RC=$?
LAST=nog
no_sanitizer "without gnuplot"
[ "$RC" -eq 0 ] || fail "without gnuplot: exit 0" "$(seen)"
[ "$(wc -l <nog.err)" = 1 ] && grep -q '^fnet-prune: warning: gnuplot is not installed' nog.err ||
    fail "without gnuplot: one warning line" "$(seen)"
grep -qE '^ +0\.5 +3236 ' nog.out && [ -s p2.dat ] && [ -s p2.gp ] && [ ! -e p2.png ] ||
    fail "without gnuplot: the table, the data and the script" "$(seen)"
ok "without gnuplot: the table, the plot's data and script, one warning"

# --- bad input: one line, nothing trained ---------------------------------------------------
head -c 3000 /dev/urandom >random.st
bad 2 'must increase, got 0.5 after 0.9' "--sparsities 0.9,0.5 (decreasing)" --data data \
    --sparsities 0.9,0.5
bad 2 'must increase, got 0.5 after 0.5' "--sparsities 0.5,0.5 (repeated)" --data data \
    --sparsities 0.5,0.5
bad 2 "0, 0.9999.*got '1'" "--sparsities 1" --data data --sparsities 1
bad 2 'fractions separated by commas' "--sparsities ''" --data data --sparsities ''
bad 2 'either --model .* or --load' "--load with --model" --data data --load w.st --model "$MODEL"
bad 2 'trained already' "--load with --epochs" --data data --load w.st --epochs 2
bad 1 'no weights to prune' "a model without weights (--model relu)" --data data --model relu
bad 2 "unknown layer kind 'bogus'" "a spec that does not parse" --data data --model bogus:3
bad 1 '4 classes but the model has 2 outputs' "too few outputs" --data data --model dense:2
bad 2 'unknown option' "an unknown option" --data data --bogus
bad 2 "got 'lbfgs'" "a solver" --data data --optim lbfgs
bad 2 "expected global or layer, got 'bogus'" "--prune-scope bogus" --data data --prune-scope bogus
bad 2 'integer' "--epochs 0" --data data --epochs 0
bad 1 'no-such-dir|cannot open' "a missing data directory" --data no-such-dir --model "$MODEL"
bad 1 'no such file|cannot open' "a missing checkpoint" --data data --load nosuch.st
bad 1 'safetensors|format' "a checkpoint that is not one" --data data --load random.st
bad 1 'no weights to prune' "a checkpoint stored as CSR" --data data --load lay-csr.st
bad 2 'pruned already, more than 0.5' "sparsities under the checkpoint's" --data data \
    --load s.st --sparsities 0.5,0.97
ok "bad sparsities, models, checkpoints and options: refused with one line"
# outputs: checked before training
for o in --save --plot --json; do
    bad 1 "cannot|no-such-dir" "an unwritable $o" "${ARGS[@]}" $o no-such-dir/x
    ! grep -qE '^training:|^  epoch ' bad.out || fail "an unwritable $o: trained first" "$(seen)"
done
# a run that fails (it diverges) leaves an existing --save as it was
cp w.st keep.st
bad 1 'the loss is NaN' "a diverging run with --save" "${ARGS[@]}" --lr 1e6 --save keep.st
cmp -s keep.st w.st || fail "a failing run changed its --save target" "$(cmp keep.st w.st 2>&1)"
ok "unwritable outputs are refused before training; an existing --save is left alone"

# SIGINT while fine-tuning: a clean stop, its message (fnet-prune does not resume)
interrupted INT '^  epoch +1/100000' "SIGINT while fine-tuning" --data data --load w.st \
    --sparsities 0.5,0.9 --finetune-epochs 100000 --batch 20 --threads 2
grep -q "stopped on request" interrupted.err || fail "SIGINT: where it stopped" "$(seen)"

echo "all $n checks passed"

#!/usr/bin/env bash
# End-to-end tests of fnet-compare (the binary behind `make demo`): a comparison of a dense and a
# TT model on a tiny synthetic IDX dataset (the table, its ratios, the JSON lines, the same
# numbers twice for the same seed) and bad input (exit 2 for bad usage, 1 for a runtime error,
# one line "fnet-compare: error: <what> (<where>)" on stderr). A few seconds, also under
# ASan/UBSan.
#
# usage: test_fnet_compare.sh BIN_DIR MKIDX
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-compare "$@"

"$MKIDX" --side 8 --classes 4 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"

run help --help
good "--help"
grep -q -- '--model' help.out && grep -q 'make demo\|reference\|first' help.out ||
    fail "--help: does not describe --model and the reference model" "$(seen)"
ok "--help exits 0"
run version --version
good "--version"
grep -qE '^fnet-compare [0-9]+\.[0-9]+\.[0-9]+' version.out || fail "--version" "$(seen)"
ok "--version exits 0: $(head -n 1 version.out)"

# --- a dense model against a TT model whose first layer is 16x smaller ---------------------
DENSE=dense:64,relu,dense:4
TT=tt:64:rank=2,relu,dense:4
ARGS=(--data data --epochs 4 --batch 20 --threads 2 --model "$DENSE" --model "$TT")
run first "${ARGS[@]}" --json first.json
good "comparing $DENSE with $TT"
grep -q "^dense:64,relu,dense:4 .* - " first.out ||
    fail "the table: the dense model has no compressed layers ('-')" "$(seen)"
row=$(grep "^tt:64:rank=2,relu,dense:4 " first.out) || fail "the table has no row for $TT" "$(seen)"
ok "a table row per model"

# parameters: dense 64x64+64 + 64x4+4 = 4,420; the TT layer's own count from the JSON
[ "$(json_field "$(head -n 1 first.json)" params)" = 4420 ] ||
    fail "--json: the dense model's parameters (64*64+64 + 64*4+4 = 4420)" "$(show first.json)"
tt_line=$(tail -n 1 first.json)
cp=$(json_field "$tt_line" compressed_params)
ad=$(json_field "$tt_line" as_dense_params)
[ "$ad" = 4160 ] || fail "--json: the TT layer replaces a 64x64+64 dense layer (4160)" "$(show first.json)"
[ "$cp" -gt 0 ] && [ "$cp" -lt 416 ] ||
    fail "--json: the TT layer should be over 10x smaller than 4160, has $cp" "$(show first.json)"
want=$(awk -v a="$ad" -v c="$cp" 'BEGIN { printf "%.1fx", a / c }')
printf '%s\n' "$row" | grep -q " $want " ||
    fail "the table's compressed column: expected $want (4160 / $cp)" "$row"
ok "parameters and the compressed ratio ($want) agree between table and JSON"

# test accuracy: the synthetic classes are learnable; both models beat chance (0.25) by far
for line in "$(head -n 1 first.json)" "$tt_line"; do
    acc=$(json_field "$line" test_acc)
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.8 && a <= 1.0) }' ||
        fail "test accuracy $acc (expected >= 0.8)" "$(show first.out)"
done
# speed: the first model's ratio is 1.00x, the second's its samples/s over the first's
s1=$(json_field "$(head -n 1 first.json)" samples_per_s)
s2=$(json_field "$tt_line" samples_per_s)
want=$(awk -v a="$s2" -v b="$s1" 'BEGIN { printf "%.2fx", a / b }')
printf '%s\n' "$row" | grep -q " $want$" || fail "the speed column: expected $want" "$row"
grep -q "^dense:64,relu,dense:4 .* 1.00x$" first.out || fail "the reference's speed is 1.00x" "$(seen)"
ok "accuracies over 0.8, speed ratios as the JSON's samples/s say"

# the same seed gives the same models: parameters and accuracies repeat exactly
run again "${ARGS[@]}" --json again.json
good "the same comparison again"
for key in params compressed_params test_acc; do
    for k in 1 2; do
        a=$(json_field "$(sed -n "${k}p" first.json)" "$key")
        b=$(json_field "$(sed -n "${k}p" again.json)" "$key")
        [ "$a" = "$b" ] || fail "model $k: $key differs between two runs ($a, $b)" \
            "$(show first.json)" "$(show again.json)"
    done
done
ok "a second run repeats parameters and accuracies"

# --- a model that diverges: marked in the table, the others still compared, exit 1 -------------
run diverge --data data --epochs 2 --batch 20 --optim sgd --lr 1e6 --json diverge.json \
    --model dense:64,tanh,dense:4 --model dense:64,relu,dense:64,relu,dense:4 \
    --model dense:64,sigmoid,dense:4
no_sanitizer "a diverging model"
[ "$RC" -eq 1 ] || fail "a diverging model: expected exit 1, got $RC" "$(seen)"
[ "$(awk 'END { print NR }' diverge.err)" -eq 1 ] &&
    grep -q '^fnet-compare: error: .*the loss is NaN.*(--model dense:64,relu,dense:64,relu,dense:4)$' diverge.err ||
    fail "a diverging model: one error line naming the loss and the model" "$(seen)"
grep -q '^dense:64,relu,dense:64,relu,dense:4 .* diverged ' diverge.out ||
    fail "a diverging model: its table row says diverged" "$(seen)"
grep -q '^dense:64,sigmoid,dense:4 .*x$' diverge.out ||
    fail "a diverging model: the model after it was still trained and compared" "$(seen)"
[ "$(awk 'END { print NR }' diverge.json)" -eq 3 ] &&
    sed -n 2p diverge.json | grep -q '"model":"dense:64,relu,dense:64,relu,dense:4".*"test_acc":null.*"error":"numerical failure' &&
    ! sed -n '1p;3p' diverge.json | grep -q '"error"' ||
    fail "a diverging model: three JSON lines, the second (diverged) with test_acc null and its error" \
        "$(show diverge.json)"
ok "a diverging model: 'diverged' in the table, the others compared, one error line, exit 1"

# --- bad input: one line, no model trained ---------------------------------------------------
bad 2 'unknown option' "an unknown option" --data data --bogus
bad 2 'spec|dense' "a spec that does not parse" --data data --epochs 1 --model dense:x
bad 2 'lbfgs|adam' "a solver as optimizer" --data data --optim lbfgs
bad 2 'epochs' "zero epochs" --data data --epochs 0
bad 1 'no-such-dir|open|not found|No such' "a missing data directory" --data no-such-dir
bad 1 'classes|outputs' "a model with fewer outputs than classes" --data data --epochs 1 \
    --model dense:8,relu,dense:2
# a bad model after a good one: refused before anything trains
bad 2 'spec|dense' "a bad second model" --data data --model dense:64,relu,dense:4 --model dense:x
! grep -q '^  epoch ' bad.out || fail "a bad second model: the first one was trained first" "$(seen)"
bad 1 'classes|outputs' "a second model with too few outputs" --data data \
    --model dense:64,relu,dense:4 --model dense:8,relu,dense:2
! grep -q '^  epoch ' bad.out || fail "a second model with too few outputs: the first trained" "$(seen)"
ok "bad models are refused before the first model trains"

many=()
for i in 1 2 3 4 5 6 7 8 9; do many+=(--model "dense:$i"); done
bad 2 'at most 8' "nine models" --data data "${many[@]}"

echo "all $n checks passed"

#!/usr/bin/env bash
# End-to-end tests of fnet-compare (the binary behind `make demo`) on a tiny synthetic IDX
# dataset: a dense and a TT model (the table, its ratios, the JSON lines, the same numbers twice
# for the same seed), every built-in variant for one short epoch (the pruned variant reusing the
# dense run, the solvers' own settings, the tensor-ring, Tucker and CP middle layers), several
# seeds (mean ± sd, one record per variant and seed, CSV), the plot (PNG and SVG; without gnuplot a warning and the table), and bad input
# (exit 2 for bad usage, 1 for a runtime error, one line "fnet-compare: error: <what> (<where>)",
# and output checked before anything trains). Under a minute, also under ASan/UBSan.
#
# usage: test_fnet_compare.sh BIN_DIR MKIDX
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-compare "$@"

"$MKIDX" --side 8 --classes 4 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"

run help --help
good "--help"
for opt in --variants --model --seeds --csv --json --plot --save-dir --save-every --resume; do
    grep -q -- "$opt" help.out || fail "--help does not describe $opt" "$(seen)"
done
ok "--help exits 0 and describes the options"
run version --version
good "--version"
grep -qE '^fnet-compare [0-9]+\.[0-9]+\.[0-9]+' version.out || fail "--version" "$(seen)"
ok "--version exits 0: $(head -n 1 version.out)"

# --- a dense model against a TT model whose first layer is 16x smaller ---------------------
DENSE=dense:64,relu,dense:4
TT=tt:64:rank=2,relu,dense:4
ARGS=(--data data --epochs 4 --batch 20 --threads 2 --model "$DENSE;name=dense" --model "$TT")
run first "${ARGS[@]}" --json first.json
good "comparing $DENSE with $TT"
row=$(grep "^model2 " first.out) || fail "the table has no row for $TT (model2)" "$(seen)"
grep -qE "^dense +4,420 +- +- " first.out ||
    fail "the table: the dense model, 4,420 parameters, no compressed layers ('-')" "$(seen)"
grep -q "tt:64:ranks=2x2x2:in=" first.out || fail "the legend shows the TT model's full spec" "$(seen)"
ok "a table row per variant, the legend with the trained specs"

# parameters: dense 64x64+64 + 64x4+4 = 4,420; the TT layer's own count from the JSON
l1=$(head -n 1 first.json)
l2=$(tail -n 1 first.json)
[ "$(json_field "$l1" params)" = 4420 ] ||
    fail "--json: the dense model's parameters (64*64+64 + 64*4+4 = 4420)" "$(show first.json)"
grep -q '"event":"variant","variant":"dense","model":"dense:64,relu,dense:4","optim":"adam","seed":1,' first.json ||
    fail "--json: event, variant, model, optim and seed" "$(show first.json)"
cp=$(json_field "$l2" compressed_params)
ad=$(json_field "$l2" as_dense_params)
[ "$ad" = 4160 ] || fail "--json: the TT layer replaces a 64x64+64 dense layer (4160)" "$(show first.json)"
[ "$cp" -gt 0 ] && [ "$cp" -lt 416 ] ||
    fail "--json: the TT layer should be over 10x smaller than 4160, has $cp" "$(show first.json)"
want=$(awk -v a="$ad" -v c="$cp" 'BEGIN { printf "%.1fx", a / c }')
printf '%s\n' "$row" | grep -q " $want " ||
    fail "the table's compression column: expected $want (4160 / $cp)" "$row"
awk -v c="$(json_field "$l2" compression)" -v a="$ad" -v p="$cp" \
    'BEGIN { exit !(c > 0.999 * a / p && c < 1.001 * a / p) }' ||
    fail "--json: compression is as_dense_params / compressed_params" "$l2"
ok "parameters and the compression ($want) agree between table and JSON"

# forward FLOPs per sample: at least the multiply-adds x2 of the dense layers (2*(64*64+64*4)),
# and not more than a few per cent above (biases, activations)
f=$(json_field "$l1" flops_per_sample)
awk -v f="$f" 'BEGIN { exit !(f >= 8704 && f <= 8704 * 1.05) }' ||
    fail "--json: flops_per_sample of the dense model $f, expected 8704 and a little more" "$l1"
# inference per sample: positive, and batch 256 amortizes better than batch 1
u1=$(json_field "$l1" infer_us_batch1)
u256=$(json_field "$l1" infer_us_batch256)
awk -v a="$u1" -v b="$u256" 'BEGIN { exit !(a > 0 && b > 0 && b < a) }' ||
    fail "--json: inference µs per sample at batch 1 ($u1) above batch 256 ($u256) > 0" "$l1"
# the checkpoint: 4420 floats and a header
cb=$(json_field "$l1" checkpoint_bytes)
[ "$cb" -gt 17680 ] && [ "$cb" -lt 20000 ] ||
    fail "--json: checkpoint_bytes $cb for 4420 floats (17,680 bytes) and a header" "$l1"
ok "FLOPs, inference times and checkpoint bytes"

# accuracy: the synthetic classes are learnable; both models beat chance (0.25) by far
for line in "$l1" "$l2"; do
    acc=$(json_field "$line" test_acc)
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.8 && a <= 1.0) }' ||
        fail "test accuracy $acc (expected >= 0.8)" "$(show first.out)"
done
# speed and accuracy difference: against the first variant, in the JSON and the table
# TFLOP/s: 3 forward passes' flops per sample times samples/s
awk -v t="$(json_field "$l1" tflops)" -v f="$(json_field "$l1" flops_per_sample)" \
    -v s="$(json_field "$l1" samples_per_s)" \
    'BEGIN { w = 3 * f * s / 1e12; exit !(t > 0 && (t - w) / w < 1e-6 && (w - t) / w < 1e-6) }' ||
    fail "--json: tflops is 3 x flops_per_sample x samples_per_s / 1e12" "$l1"
s1=$(json_field "$l1" samples_per_s)
s2=$(json_field "$l2" samples_per_s)
want=$(awk -v a="$s2" -v b="$s1" 'BEGIN { printf "%.2fx", a / b }')
printf '%s\n' "$row" | grep -q " $want " || fail "the speed column: expected $want" "$row"
awk -v s="$(json_field "$l2" speed)" -v a="$s2" -v b="$s1" \
    'BEGIN { exit !(s > 0.999 * a / b && s < 1.001 * a / b) }' || fail "--json: speed" "$l2"
d=$(awk -v a="$(json_field "$l2" test_acc)" -v b="$(json_field "$l1" test_acc)" \
    'BEGIN { printf "%+.2f", 100 * (a - b) }')
printf '%s\n' "$row" | grep -q " $d " || fail "the d_acc column: expected $d points" "$row"
grep -qE "^dense .* 1\.00x " first.out || fail "the reference's speed is 1.00x" "$(seen)"
ok "accuracies over 0.8, speed ratio $want and accuracy difference $d as the JSON says"

# the same seed gives the same models: parameters and accuracies repeat exactly
run again "${ARGS[@]}" --json again.json
good "the same comparison again"
for key in params compressed_params test_acc test_loss flops_per_sample checkpoint_bytes; do
    for k in 1 2; do
        a=$(json_field "$(sed -n "${k}p" first.json)" "$key")
        b=$(json_field "$(sed -n "${k}p" again.json)" "$key")
        [ "$a" = "$b" ] || fail "model $k: $key differs between two runs ($a, $b)" \
            "$(show first.json)" "$(show again.json)"
    done
done
ok "a second run repeats parameters, accuracies, losses, FLOPs and checkpoint sizes"

# --- interrupted and resumed: the same records as in one go ---------------------------------
# (the signal goes to a stopped process as the second model begins, so it lands in its training)
mkdir w1 w2
RARGS=(--data data --epochs 150 --batch 20 --threads 2 --model "$DENSE;name=dense" --model "$TT")
run whole "${RARGS[@]}" --save-dir w1 --json whole.json
good "two models with --save-dir"
"$PROG_PATH" "${RARGS[@]}" --save-dir w2 --json part.json </dev/null >part.out 2>part.err &
PID=$!
tries=0
while ! grep -q '^model2 (seed 1)' part.out 2>/dev/null && kill -0 "$PID" 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 3000 ] || fail "the second model never began" "$(show part.out)"
    sleep 0.01
done
kill -STOP "$PID"
kill -INT "$PID"
kill -CONT "$PID"
LAST=part
reap "$PID" "SIGINT during the second model"
[ "$RC" -eq 130 ] && grep -q "interrupted by SIGINT: variant model2, seed 1: stopped on request" part.err &&
    grep -q "resume with: the same fnet-compare command with --resume" part.err ||
    fail "SIGINT during the second model: exit 130, where it stopped, how to resume" "$(seen)"
[ -s w2/model2-seed1.run.safetensors ] || fail "the interrupted run's checkpoint" "$(ls -l w2)"
[ "$(wc -l <part.json)" -eq 1 ] || fail "the first model's record is written" "$(show part.json)"
ok "SIGINT: exit 130, the finished model's record and the interrupted run's checkpoint kept"
run resumed "${RARGS[@]}" --save-dir w2 --json part.json --resume
good "--resume"
grep -q "trained before: w2/dense-seed1.run.safetensors" resumed.out &&
    grep -q "resuming w2/model2-seed1.run.safetensors: epoch" resumed.out ||
    fail "--resume reuses the finished run and continues the other" "$(seen)"
for k in 1 2; do
    for key in test_loss test_acc params checkpoint_bytes; do
        a=$(json_field "$(sed -n "${k}p" whole.json)" "$key")
        b=$(json_field "$(sed -n "${k}p" part.json)" "$key")
        [ "$a" = "$b" ] || fail "model $k: $key differs after the resume ($a, $b)" \
            "$(show whole.json)" "$(show part.json)"
    done
done
ok "interrupted and resumed: the same test losses and sizes as in one go"
bad 2 "needs --save-dir" "--resume without --save-dir" "${RARGS[@]}" --resume
bad 2 "this command's run is another" "--resume with another learning rate" "${RARGS[@]}" \
    --save-dir w2 --resume --lr 0.01
bad 2 "this command's run is another" "--resume with another model under the same name" \
    --data data --epochs 150 --batch 20 --threads 2 --model "$TT;name=dense" --save-dir w2 --resume
mkdir w3
run pruned_every --data data --epochs 2 --batch 20 --threads 2 --save-dir w3 --save-every 1 \
    --model "$DENSE;name=p;prune=0.5;rounds=2;finetune=1"
good "--save-every with a pruned variant that trains its own dense run"
[ -s w3/p-seed1.run.safetensors ] || fail "the pruned variant's dense run checkpoint" "$(ls -l w3)"

# --- every built-in variant, one short epoch -------------------------------------------------
run all --data data --epochs 1 --limit-train 300 --threads 2 --json all.json --csv all.csv \
    --save-dir .
good "every built-in variant"
names=$(sed 's/.*"variant":"\([^"]*\)".*/\1/' all.json | tr '\n' ' ')
[ "$names" = "dense tt tr tucker cp lowrank circ pruned sparse lbfgs cg " ] ||
    fail "--variants all: dense tt tr tucker cp lowrank circ pruned sparse lbfgs cg, in order; got $names" \
        "$(show all.json)"
for v in dense tt tr tucker cp lowrank circ pruned sparse lbfgs cg; do
    grep -qE "^$v " all.out || fail "the table has no row for $v" "$(seen)"
    [ -s "$v-seed1.safetensors" ] || fail "--save-dir: $v-seed1.safetensors" "$(ls -l)"
done
ok "every built-in variant trained, tabled and saved"
# the pruned variant is the dense run, pruned to 10% in 3 rounds of 1 epoch, stored as CSR
grep -q "the dense run of seed 1, trained above" all.out ||
    fail "pruned: reuses the dense variant's run" "$(seen)"
pl=$(grep '"variant":"pruned"' all.json)
dl=$(grep '"variant":"dense"' all.json)
[ "$(json_field "$pl" epochs)" = 4 ] || fail "pruned: 1 dense epoch + 3 rounds of 1" "$pl"
awk -v p="$(json_field "$pl" train_seconds)" -v d="$(json_field "$dl" train_seconds)" \
    'BEGIN { exit !(p > d) }' || fail "pruned: its training time includes the dense run's" "$pl"
printf '%s\n' "$pl" | grep -q '"model":"sparse:1024:nnz=[0-9]*,relu,sparse:1024:nnz=[0-9]*,relu,sparse:10:nnz=[0-9]*"' ||
    fail "pruned: every layer is stored as CSR" "$pl"
# 10% of the 64x1024 + 1024x1024 + 1024x10 = 1,124,352 weights kept (global), and the 2,058
# biases: 114,494 parameters, give or take the rounding of the last round
p=$(json_field "$pl" params)
awk -v p="$p" 'BEGIN { exit !(p >= 114493 && p <= 114494) }' ||
    fail "pruned: about 10% of the weights stored, got $p parameters" "$pl"
# the solvers: their own batch and a tenth of the epochs (at least 1)
for s in lbfgs cg; do
    sl=$(grep "\"variant\":\"$s\"" all.json)
    printf '%s\n' "$sl" | grep -q "\"optim\":\"$s\",\"seed\":1,\"batch\":2000,\"epochs\":1," ||
        fail "$s: optim $s, batch 2000, 1 epoch" "$sl"
done
# the sparse variant: its middle layer at density 0.1 (104,858 of 1024x1024)
grep '"variant":"sparse"' all.json | grep -q 'sparse:1024:nnz=104858' ||
    fail "sparse: middle layer nnz 104858" "$(show all.json)"
ok "pruned reuses dense (4 epochs, CSR, ~10%), solvers at batch 2000, sparse at density 0.1"
# the tensor networks: their middle layer's full spec, its parameters against the dense layer's
# 1024*1024+1024 = 1,049,600, and the legend's line
for want in 'tr:dense:1024,relu,tr:1024:ranks=8x8x8:ring=2:in=4x4x8x8:out=8x8x4x4,relu,dense:10:6144:tensor ring, ring rank 2' \
    'tucker:dense:1024,relu,tucker:1024:ranks=10x10x10x10:in=32x32:out=32x32,relu,dense:10:12304:Tucker' \
    'cp:dense:1024,relu,cp:1024:rank=128:in=32x32:out=32x32,relu,dense:10:17408:CP, 128 rank-one'; do
    v=${want%%:*}
    rest=${want#*:}
    about=${rest##*:}
    rest=${rest%:*}
    params=${rest##*:}
    spec=${rest%:*}
    vl=$(grep "\"variant\":\"$v\"" all.json)
    printf '%s\n' "$vl" | grep -qF "\"model\":\"$spec\"" &&
        [ "$(json_field "$vl" compressed_params)" = "$params" ] &&
        [ "$(json_field "$vl" as_dense_params)" = 1049600 ] ||
        fail "$v: the spec $spec, $params parameters in place of 1,049,600" "$vl"
    grep -q "^ *${v}[: ].*$about" all.out || fail "$v: the legend says '$about'" "$(seen)"
done
ok "tr, tucker, cp: the middle layer as a ring, Tucker and CP layer, their sizes and legend"
[ "$(wc -l <all.csv)" = 12 ] && head -n 1 all.csv | grep -q '^variant,model,optim,seed,' ||
    fail "--csv: a header and 11 rows" "$(show all.csv)"
grep -q '^tt,"dense:1024,relu,tt:1024:ranks=' all.csv || fail "--csv: the spec quoted" "$(show all.csv)"
ok "--csv: a header and one row per variant"

# --- several seeds: one record per variant and seed, mean ± sd in the table -----------------
run seeds --data data --epochs 2 --batch 20 --seed 5 --seeds 3 --variants dense \
    --model "$TT;name=tt-cg;optim=cg;batch=100;iters=2;epochs=1" --json seeds.json --plot plot
good "three seeds"
[ "$(sed 's/.*"variant":"\([^"]*\)","model.*"seed":\([0-9]*\),.*/\1:\2/' seeds.json | tr '\n' ' ')" = \
    "dense:5 tt-cg:5 dense:6 tt-cg:6 dense:7 tt-cg:7 " ] ||
    fail "--seeds 3 --seed 5: seeds 5, 6, 7, every variant each" "$(show seeds.json)"
grep -qE '^dense .* [0-9]+±[0-9]+ .* [01]\.[0-9]{4}±0\.[0-9]{4} ' seeds.out ||
    fail "the table: mean ± sd of samples/s and accuracy" "$(seen)"
grep '"variant":"tt-cg"' seeds.json | head -n 1 | grep -q '"optim":"cg","seed":5,"batch":100,"epochs":1,' ||
    fail "a user's variant carries its optimizer, batch and epochs" "$(show seeds.json)"
# the table's mean is the mean of the three records
m=$(grep '"variant":"dense"' seeds.json | sed 's/.*"test_acc":\([^,]*\),.*/\1/' |
    awk '{ s += $1 } END { printf "%.4f", s / NR }')
grep -qE "^dense .* $m±" seeds.out || fail "the table's dense accuracy is the mean $m" "$(seen)"
ok "--seeds: records for every seed, mean ± sd ($m) in the table"
if command -v gnuplot >/dev/null; then
    [ -s plot.png ] && [ -s plot.svg ] && [ -s plot.dat ] && [ -s plot.gp ] ||
        fail "--plot plot: plot.png, .svg, .dat and .gp" "$(ls -l)"
    [ "$(head -c 8 plot.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
        fail "plot.png is not a PNG" "$(ls -l plot.png)"
    grep -q '<svg' plot.svg && grep -q 'stored parameters (log scale)' plot.svg &&
        grep -q 'training samples/s' plot.svg && grep -q 'dense (reference)' plot.svg ||
        fail "plot.svg: axis labels and the reference in the legend" "$(head -c 400 plot.svg)"
    grep -q '^plot: plot.png, plot.svg$' seeds.out || fail "the plot's path is printed" "$(seen)"
    ok "--plot: PNG and SVG with labelled axes and the reference marked"
fi
# without gnuplot: the table still prints, one warning line, exit 0
mkdir nognuplot
ln -s "$(command -v env)" nognuplot/env
PATH=$WORK/nognuplot "$PROG_PATH" --data data --epochs 1 --batch 20 --model "$DENSE" \
    --plot p2 >nog.out 2>nog.err </dev/null
RC=$?
LAST=nog
[ "$RC" -eq 0 ] || fail "without gnuplot: exit 0" "$(seen)"
[ "$(wc -l <nog.err)" = 1 ] && grep -q '^fnet-compare: warning: gnuplot is not installed' nog.err ||
    fail "without gnuplot: one warning line" "$(seen)"
grep -qE '^model1 ' nog.out && [ -s p2.dat ] && [ -s p2.gp ] ||
    fail "without gnuplot: the table, the data and the script" "$(seen)"
ok "without gnuplot: the table, the plot's data and script, one warning"

# --- a model that diverges: marked in the table, the others still compared, exit 1 -------------
run diverge --data data --epochs 2 --batch 20 --optim sgd --lr 1e6 --json diverge.json \
    --model dense:64,tanh,dense:4 --model dense:64,relu,dense:64,relu,dense:4 \
    --model dense:64,sigmoid,dense:4 --plot dv
no_sanitizer "a diverging model"
[ "$RC" -eq 1 ] || fail "a diverging model: expected exit 1, got $RC" "$(seen)"
[ "$(awk 'END { print NR }' diverge.err)" -eq 1 ] &&
    grep -q '^fnet-compare: error: .*the loss is NaN.*(variant model2, seed 1)$' diverge.err ||
    fail "a diverging model: one error line naming the loss and the variant" "$(seen)"
grep -qE '^model2 .* diverged$' diverge.out || fail "a diverging model: its row says diverged" "$(seen)"
grep -qE '^model3 .*x ' diverge.out ||
    fail "a diverging model: the model after it was still trained and compared" "$(seen)"
[ "$(awk 'END { print NR }' diverge.json)" -eq 3 ] &&
    sed -n 2p diverge.json | grep -q '"model":"dense:64,relu,dense:64,relu,dense:4".*"error":"numerical failure.*"test_acc":null' &&
    ! sed -n '1p;3p' diverge.json | grep -q '"error"' ||
    fail "a diverging model: three JSON lines, the second (diverged) with test_acc null and its error" \
        "$(show diverge.json)"
# the plot leaves the diverged variant out and keeps the others in their places
if command -v gnuplot >/dev/null; then
    [ -s dv.png ] && [ -s dv.svg ] || fail "a diverging model: the plot is still drawn" "$(ls -l)"
    [ "$(awk 'NF == 7 && $3 != "NaN"' dv.dat | wc -l)" = 4 ] &&
        grep -q '^1 model2 NaN NaN NaN NaN NaN$' dv.dat ||
        fail "a diverging model: dv.dat has NaN rows for it, numbers for the other two" \
            "$(cat dv.dat)"
fi
ok "a diverging model: 'diverged' in the table, the others compared and plotted, one error line, exit 1"

# a pruned model's zeros are not stored parameters: prune=0.5 keeps half of each hidden layer
# (global: of the 64x64 + 64x64 + 64x4 = 8448 weights, 4224 pruned) and its biases
run p5 --data data --epochs 1 --batch 20 --model "dense:64,relu,dense:64,relu,dense:4;prune=0.5" \
    --json p5.json
good "prune=0.5"
L=$(cat p5.json)
[ "$(json_field "$L" params)" = 4356 ] && [ "$(json_field "$L" compressed_params)" -le 4356 ] ||
    fail "prune=0.5: 8580 - 4224 = 4356 stored parameters, the pruned layers compressed" "$L"
ok "prune=0.5: the stored parameters count no pruned weight"

# --- bad input: one line, no model trained ---------------------------------------------------
bad 2 'unknown option' "an unknown option" --data data --bogus
bad 2 'spec|dense' "a spec that does not parse" --data data --epochs 1 --model dense:x
bad 2 "no variant named 'nosuch'.*dense, tt, tr, tucker, cp, lowrank, circ, pruned, sparse, lbfgs, cg, or all" \
    "a variant that does not exist" --data data --variants dense,nosuch
bad 2 'unknown setting' "a setting that does not exist" --data data --model "$DENSE;colour=red"
bad 2 'key=value' "a setting without a value" --data data --model "$DENSE;optim"
bad 2 'learning rate' "a solver with a rate" --data data --model "$DENSE;optim=lbfgs;lr=0.1"
bad 2 'used twice' "a name used twice" --data data --model "$DENSE;name=a" --model "$DENSE;name=a"
bad 2 'slashes' "a name with a slash" --data data --model "$DENSE;name=../a"
bad 2 'needs a sparse' "sparse-update without a sparse layer" --data data \
    --model "$DENSE;sparse-update=set"
bad 2 'epochs' "zero epochs" --data data --epochs 0
bad 2 'seeds' "zero seeds" --data data --seeds 0
bad 1 'no-such-dir|open|not found|No such' "a missing data directory" --data no-such-dir
bad 1 'classes|outputs' "a model with fewer outputs than classes" --data data --epochs 1 \
    --model dense:8,relu,dense:2
# a bad model after a good one, or an output that cannot be written: refused before training
bad 2 'spec|dense' "a bad second model" --data data --model "$DENSE" --model dense:x
! grep -q '^  epoch ' bad.out || fail "a bad second model: the first one was trained first" "$(seen)"
bad 1 'classes|outputs' "a second model with too few outputs" --data data \
    --model "$DENSE" --model dense:8,relu,dense:2
! grep -q '^  epoch ' bad.out || fail "a second model with too few outputs: the first trained" "$(seen)"
for o in --json --csv --plot; do
    bad 1 "cannot|no-such" "an unwritable $o" --data data --model "$DENSE" $o no-such/out
    ! grep -q '^  epoch ' bad.out || fail "an unwritable $o: a model trained first" "$(seen)"
done
bad 1 'writable directory' "a --save-dir that does not exist" --data data --model "$DENSE" \
    --save-dir no-such
# results already written stay: a run that fails on its output leaves an existing file alone
printf 'keep\n' >keep.csv
chmod a-w keep.csv
if ! [ -w keep.csv ]; then # root writes anyway
    bad 1 'cannot' "a read-only --csv" --data data --model "$DENSE" --csv keep.csv
    [ "$(cat keep.csv)" = keep ] || fail "a read-only --csv: its content changed" "$(cat keep.csv)"
fi
ok "bad variants, settings and outputs are refused before the first model trains"

echo "all $n checks passed"

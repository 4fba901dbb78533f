#!/usr/bin/env bash
# shellcheck disable=SC2015  # "A && B || fail" is meant: fail when either is false
# End-to-end tests of fnet-train as a new user would run it (docs/design.md, "Checkpoints and
# the command line", and "Ownership, errors, threads"): good runs on a tiny synthetic IDX dataset (gzip and raw),
# JSON lines, determinism, --save/--load, bad input (exit 2 for bad usage, 1 for a runtime error,
# one line "fnet-train: error: <what> (<where>)" on stderr) and saves that never damage a good
# checkpoint. No network, no GPU, no python; a few seconds, also under ASan/UBSan.
#
# usage: test_fnet_train.sh BIN_DIR MKIDX
#   BIN_DIR  the build's bin/ directory (holds fnet-train)
#   MKIDX    the fnet-mkidx generator (tests/cli/mkidx.c)
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-train "$@"
MODEL=dense:16,relu,dense:10

# --- help and version -----------------------------------------------------------------------

run help --help
good "--help"
grep -q -- '--model' help.out || fail "--help: does not mention --model" "$(seen)"
ok "--help exits 0 and mentions --model"

run version --version
good "--version"
grep -qE '^fnet-train [0-9]+\.[0-9]+\.[0-9]+' version.out ||
    fail "--version: expected 'fnet-train X.Y.Z'" "$(seen)"
ok "--version exits 0: $(head -n 1 version.out)"

# --- data: 1000 training / 200 test samples, 8x8 pixels, 5 classes, learnable ---------------

"$MKIDX" gz >mkidx.log 2>&1 || fail "setup: fnet-mkidx gz" "$(cat mkidx.log)"
"$MKIDX" --raw raw >mkidx.log 2>&1 || fail "setup: fnet-mkidx --raw raw" "$(cat mkidx.log)"
[ -f gz/train-images-idx3-ubyte.gz ] && [ -f raw/t10k-labels-idx1-ubyte ] ||
    fail "setup: fnet-mkidx wrote no IDX files" "$(ls -lR . 2>&1)"
mkidx_bad() { # DIR ARGS...: a damaged copy of the dataset
    local dir=$1
    shift
    "$MKIDX" "$@" "$dir" >mkidx.log 2>&1 || fail "setup: fnet-mkidx $* $dir" "$(cat mkidx.log)"
}
mkidx_bad gz_trunc --corrupt truncate
mkidx_bad raw_trunc --raw --corrupt truncate
mkidx_bad raw_magic --raw --corrupt magic
mkidx_bad gz_magic --corrupt magic
mkidx_bad gz_count --corrupt count --file train-labels
mkidx_bad raw_count --raw --corrupt count --file t10k-images
mkidx_bad gz_trailing --corrupt trailing
mkidx_bad gz_crc --corrupt crc
ok "fnet-mkidx: a good dataset (gzip and raw) and eight damaged ones"

# --- a good run, as in the README: default threads, JSON lines ------------------------------

run first --data gz --model "$MODEL" --epochs 3 --batch 16 --val-split 0.2 --json first.json
good "training on gzip data"
[ -s first.json ] || fail "--json: first.json is missing or empty" "$(seen)"
epochs=$(grep -c '"event":"epoch"' first.json)
[ "$epochs" -eq 3 ] || fail "--json: expected 3 epoch lines, got $epochs" "$(show first.json)"
lines=$(awk 'END { print NR }' first.json)
[ "$lines" -eq 4 ] || fail "--json: expected 4 lines (3 epochs, 1 final), got $lines" "$(show first.json)"
for key in epoch train_loss val_loss val_acc seconds samples_per_s; do
    missing=$(grep '"event":"epoch"' first.json | grep -vc "\"$key\":[-0-9]")
    [ "$missing" -eq 0 ] || fail "--json: $missing epoch line(s) without a number for \"$key\"" \
        "$(show first.json)"
done
grep -q 'val_acc' first.out || fail "a run with --val-split prints val_acc per epoch" "$(seen)"
ok "epoch lines with the validation figures"

run noval --data gz --model "$MODEL" --epochs 1 --batch 16
good "training without a validation set"
grep -q '^epoch  1/1  loss [0-9.]*  lr 0.001  ' noval.out ||
    fail "an epoch line without a validation set: no val_* fields" "$(seen)"
# the rate counts 3 forward passes' flops per sample (cli_model_flops): samples/s and TFLOP/s
awk '/^epoch  1\/1/ { for (i = 1; i < NF; i++) { if ($(i + 1) == "samples/s") s = $i
                                                 if ($(i + 1) == "TFLOP/s") t = $i }
                      found = s > 0 && t > 0 }
     END { exit !found }' noval.out ||
    fail "an epoch line reports samples/s and TFLOP/s" "$(seen)"
if grep -qi 'nan' noval.out; then
    fail "an epoch line without a validation set prints no nan" "$(seen)"
fi
ok "epoch lines without a validation set: no val_loss/val_acc, no nan"

final=$(tail -n 1 first.json)
case $final in
*'"event":"final"'*) ;;
*) fail "--json: the last line is not the final object" "$(show first.json)" ;;
esac
case $final in
*"\"model\":\"$MODEL\""*) ;;
*) fail "--json: the final object does not name the model \"$MODEL\"" "$final" ;;
esac
for key in params test_acc test_loss train_seconds samples_per_s peak_rss_mb; do
    [[ $(json_field "$final" "$key") =~ ^-?[0-9] ]] ||
        fail "--json: the final object has no number for \"$key\"" "$final"
done
[ "$(json_field "$final" params)" = 1210 ] ||
    fail "--json: params should be 64*16+16 + 16*10+10 = 1210" "$final"
ok "--json: 3 epoch objects and a final one, with every key"
acc=$(final_field first.json test_acc)
awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }' ||
    fail "learning: test_acc $acc is not above 0.8 on learnable data" "$(show first.json)" "$(seen)"
ok "learning: test_acc $acc > 0.8 after 3 epochs"
epoch_lines=$(grep -c '^epoch' first.out)
[ "$epoch_lines" -eq 3 ] || fail "stdout: expected 3 lines starting with 'epoch', got $epoch_lines" "$(seen)"
if grep -q $'\r' first.out; then
    fail "stdout: carriage returns (a progress bar) although stdout is not a terminal" \
        "$(od -c first.out | head -n 10)"
fi
ok "stdout (not a terminal): one line per epoch, no progress bar"

# --- gzip and raw, determinism, FNET_DATA ---------------------------------------------------

common=(--model "$MODEL" --epochs 2 --batch 16 --val-split 0.2 --seed 7 --threads 1)
run gz1 --data gz "${common[@]}" --json gz1.json
good "gzip data, --seed 7 --threads 1"
run gz2 --data gz "${common[@]}" --json gz2.json
good "gzip data again"
loss1=$(final_field gz1.json test_loss)
loss2=$(final_field gz2.json test_loss)
[ -n "$loss1" ] && [ "$loss1" = "$loss2" ] ||
    fail "determinism: the same --seed and --threads 1 gave test_loss '$loss1' and '$loss2'"
ok "determinism: two runs with --seed 7 --threads 1 give test_loss $loss1"

run raw1 --data raw "${common[@]}" --json raw1.json
good "raw data"
acc=$(final_field raw1.json test_acc)
loss=$(final_field raw1.json test_loss)
[ "$loss" = "$loss1" ] ||
    fail "raw files: the same data, raw instead of gzip, gave test_loss '$loss', not '$loss1'"
ok "raw files: exit 0, the same result as gzip (test_acc $acc, test_loss $loss)"

FNET_DATA=$WORK/raw run env1 "${common[@]}" --json env1.json
good "FNET_DATA without --data"
loss=$(final_field env1.json test_loss)
[ "$loss" = "$loss1" ] || fail "FNET_DATA: test_loss '$loss', expected '$loss1' (the same data)" "$(seen)"
ok "FNET_DATA is used when --data is omitted"
FNET_DATA=$WORK/no-such-dir run env2 --data gz "${common[@]}" --json env2.json
good "--data over a bad FNET_DATA"
[ "$(final_field env2.json test_loss)" = "$loss1" ] || fail "--data does not win over FNET_DATA" "$(seen)"
ok "--data wins over FNET_DATA"

# --- a tensor-train layer: trains, and its checkpoint (cores and modes) evaluates the same ------

run tt --data gz --model dense:16,relu,tt:16:rank=2,relu,dense:10 --epochs 3 --seed 3 --threads 1 \
    --save tt.st --json tt.json
good "a tt layer"
grep -q '"model":"dense:16,relu,tt:16:ranks=2x2x2:in=2x2x2x2:out=2x2x2x2,relu,dense:10"' tt.json ||
    fail "tt: the final JSON does not name the layer's modes and ranks" "$(show tt.json)"
run tt-eval --data gz --load tt.st --epochs 0 --threads 1 --json tt-eval.json
good "--load tt.st --epochs 0"
[ "$(final_field tt.json test_loss)" = "$(final_field tt-eval.json test_loss)" ] ||
    fail "tt checkpoint: test_loss differs after --load" "$(show tt.json)" "$(show tt-eval.json)"
ok "a tt checkpoint evaluates exactly as the run that saved it"

run tt-round --data gz --model dense:16,relu,tt:16:rank=4,relu,dense:10 --epochs 3 --seed 3 \
    --threads 1 --tt-round-every 1 --tt-max-rank 2 --json tt-round.json
good "--tt-round-every 1 --tt-max-rank 2"
grep -q '"tt_ranks":"2x2x2"' tt-round.json ||
    fail "rank-adaptive training: the epoch lines do not show ranks capped at 2" "$(show tt-round.json)"
grep -q 'tt ranks 2x2x2' tt-round.out ||
    fail "rank-adaptive training: stdout does not show the ranks" "$(seen)"
ok "rank-adaptive training rounds the TT ranks down to the cap and reports them"
bad 2 'TT rounding' "--tt-round-every 1 --tt-eps 0 (no accuracy and no cap)" --data gz \
    --model dense:16,relu,tt:16:rank=4,relu,dense:10 --tt-round-every 1 --tt-eps 0

# --- low-rank and block-circulant layers, Frobenius decay, their checkpoints ----------------------

lr_model=dense:16,relu,lowrank:16:rank=4,relu,circ:16:block=4,relu,dense:10
run lr --data gz --model "$lr_model" --epochs 3 --seed 3 --threads 1 --fro-decay 1e-3 \
    --save lr.st --json lr.json
good "a low-rank and a block-circulant layer, --fro-decay"
grep -q "\"model\":\"$lr_model\"" lr.json ||
    fail "low-rank/circulant: the final JSON does not name the layers" "$(show lr.json)"
awk -v a="$(final_field lr.json test_acc)" 'BEGIN { exit !(a > 0.8) }' ||
    fail "low-rank/circulant: test_acc is not above 0.8 on learnable data" "$(show lr.json)"
run lr-eval --data gz --load lr.st --epochs 0 --threads 1 --json lr-eval.json
good "--load lr.st --epochs 0"
[ "$(final_field lr.json test_loss)" = "$(final_field lr-eval.json test_loss)" ] ||
    fail "low-rank/circulant checkpoint: test_loss differs after --load" "$(show lr.json)" \
        "$(show lr-eval.json)"
ok "low-rank and circulant checkpoints evaluate exactly as the run that saved them"

run rollback --data gz --model "$MODEL" --optim sgd --lr 1e6 --loss mse --epochs 2 --threads 1 \
    --on-nan rollback --max-rollbacks 40 --json rollback.json
good "--on-nan rollback with a diverging learning rate"
grep -q 'warning: epoch 1: the loss became NaN/Inf; rolled back' rollback.err ||
    fail "--on-nan rollback: no warning about the rollback on stderr" "$(seen)"
ok "--on-nan rollback recovers a diverging run and says so"
bad 2 'on-nan' "--on-nan sometimes" --data gz --model "$MODEL" --on-nan sometimes

# --- the guarded backend: the whole run keeps to the memory domains, with the same numbers ------
# Its memory faults when host code touches it, and an op given host memory stops the program
# (docs/design.md, "Memory domains"); it runs the reference backend's ops.

guarded_model=dense:16,tanh,dropout:0.2,tt:16:rank=3,relu,dense:10
for dev in reference guarded; do
    run "dev-$dev" --data gz --model "$guarded_model" --epochs 2 --batch 16 --val-split 0.2 \
        --seed 5 --threads 2 --tt-round-every 1 --tt-eps 0.3 --save "$dev.st" --json "$dev.json" \
        --device "$dev"
    good "--device $dev: TT, dropout, rank-adaptive rounding, validation, --save"
done
# the tensors, byte for byte (the metadata names the backend and the run's timings)
cmp -s <(data_of reference.st) <(data_of guarded.st) ||
    fail "--device guarded: the checkpoint's tensors differ from the reference's" \
    "$(cmp <(data_of reference.st) <(data_of guarded.st) 2>&1)"
[ "$(final_field reference.json test_acc)" = "$(final_field guarded.json test_acc)" ] ||
    fail "--device guarded: test_acc differs from the reference's" "$(show guarded.json)"
ok "--device guarded: the same checkpoint and test accuracy as --device reference"
run dev-load --data gz --load guarded.st --epochs 0 --device guarded --json dev-load.json
good "--device guarded --load: evaluates the checkpoint"
[ "$(final_field dev-load.json test_acc)" = "$(final_field guarded.json test_acc)" ] ||
    fail "--device guarded --load: test_acc differs from the run that saved it" "$(show dev-load.json)"
ok "--device guarded --load: the same test accuracy as the run that saved it"
for optim in lbfgs cg; do
    run "dev-$optim" --data gz --model dense:16,relu,dense:10 --optim "$optim" --batch 200 \
        --iters-per-batch 3 --epochs 1 --device guarded --threads 1
    good "--device guarded --optim $optim"
done

# --- save, evaluate, resume -----------------------------------------------------------------

run save --data gz --model "$MODEL" --epochs 2 --seed 3 --threads 1 --save a.st --json save.json
good "--save a.st"
[ -s a.st ] || fail "--save: a.st is missing or empty" "$(seen)" "$(ls -l)"
no_litter "--save"
ok "--save writes a.st ($(wc -c <a.st) bytes) and nothing else"
cp a.st a.ref

run eval --data gz --load a.st --epochs 0 --threads 1 --json eval.json
good "--load a.st --epochs 0"
if grep -q '^epoch' eval.out; then
    fail "--epochs 0: evaluation only, yet an epoch line was printed" "$(seen)"
fi
for key in test_acc test_loss; do
    a=$(final_field save.json "$key")
    b=$(final_field eval.json "$key")
    [ -n "$a" ] && [ "$a" = "$b" ] ||
        fail "--load --epochs 0: $key $b, but the run that saved printed $a" "$(show eval.json)"
done
printed_save=$(grep '^test_acc' save.out | awk '{ print $2, $4 }')
printed_eval=$(grep '^test_acc' eval.out | awk '{ print $2, $4 }')
[ -n "$printed_save" ] && [ "$printed_save" = "$printed_eval" ] ||
    fail "--load --epochs 0: stdout says '$printed_eval', the run that saved said '$printed_save'"
ok "--load --epochs 0 reproduces test_acc/test_loss exactly ($printed_eval)"
unchanged a.st a.ref "--load only reads"

run preds --data gz --load a.st --epochs 0 --threads 1 --predictions preds.txt
good "--load a.st --epochs 0 --predictions preds.txt"
[ "$(awk 'END { print NR }' preds.txt)" -eq 200 ] && awk '!/^[0-9]$/ { exit 1 }' preds.txt ||
    fail "--predictions: one class in 0..9 (the model's 10 outputs) per test image, 200 lines" \
        "$(show preds.txt)"
ok "--predictions writes the predicted class of each of the 200 test images"

run evalspec --data gz --load a.st --model "$MODEL" --epochs 0 --threads 1 --json evalspec.json
good "--load a.st with the same --model"
[ "$(final_field evalspec.json test_loss)" = "$(final_field save.json test_loss)" ] ||
    fail "--load with the same --model: a different test_loss" "$(seen)"
ok "--load with the same --model loads the same weights"

run resume --data gz --load a.st --epochs 1 --threads 1 --save b.st
good "--load a.st --epochs 1 (resume)"
[ "$(grep -c '^epoch' resume.out)" -eq 1 ] || fail "resume: expected one epoch line" "$(seen)"
[ -s b.st ] || fail "resume: --save b.st wrote nothing" "$(seen)"
if cmp -s a.st b.st; then
    fail "resume: one more epoch of training did not change the checkpoint"
fi
ok "--load --epochs 1 resumes training and saves b.st"

cp a.ref inplace.st
run inplace --data gz --load inplace.st --epochs 1 --threads 1 --save inplace.st
good "--load inplace.st --save inplace.st"
if cmp -s inplace.st a.ref; then
    fail "resume in place: inplace.st was not rewritten" "$(seen)"
fi
no_litter "resume in place"
ok "--load F --save F resumes and replaces F in place"

bad 1 'mismatch|does not (fit|match)|differ' "--load with a --model that differs" \
    --data gz --load a.st --model dense:32,relu,dense:10 --epochs 1 --threads 1
grep -q 'dense:32' bad.err || fail "--load mismatch: the error does not name the --model given" "$(seen)"

# --- a failed save never damages a good checkpoint ------------------------------------------

bad 1 'nodir' "--save into a directory that does not exist" \
    --data gz --model "$MODEL" --epochs 1 --threads 1 --save nodir/a.st
unchanged a.st a.ref "--save nodir/a.st"
[ ! -e nodir ] || fail "--save nodir/a.st: created nodir"
mkdir ckdir
bad 1 'ckdir' "--save onto an existing directory" \
    --data gz --model "$MODEL" --epochs 1 --threads 1 --save ckdir
[ -d ckdir ] && [ -z "$(ls -A ckdir)" ] || fail "--save ckdir: the directory was changed" "$(ls -la ckdir)"
bad 1 'loss|nan|inf' "diverging training (sgd, lr 1e6, mse) with --save a.st" \
    --data gz --model "$MODEL" --optim sgd --lr 1e6 --loss mse --epochs 3 --threads 1 --save a.st
unchanged a.st a.ref "a diverging run with --save a.st"
bad 1 'json' "--json into a missing directory, with --save a.st" \
    --data gz --model "$MODEL" --epochs 1 --threads 1 --json nodir/x.json --save a.st
unchanged a.st a.ref "a run whose --json fails, with --save a.st"
no_litter "failed saves"
ok "a.st is byte-identical after every failed run, no temporary files left"

# --- bad data: runtime errors, exit 1 -------------------------------------------------------

bad 1 'directory|no such' "a missing data directory" --data no-such-dir --model "$MODEL" --threads 1
bad 1 'truncat' "a truncated gzip images file" --data gz_trunc --model "$MODEL" --threads 1
bad 1 'truncat' "a truncated raw images file" --data raw_trunc --model "$MODEL" --threads 1
bad 1 'magic' "a raw images file with a bad magic" --data raw_magic --model "$MODEL" --threads 1
bad 1 'magic' "a gzip images file with a bad magic inside" --data gz_magic --model "$MODEL" --threads 1
bad 1 'count|disagree' "999 training labels for 1000 images" --data gz_count --model "$MODEL" --threads 1
bad 1 'count|disagree' "199 test images for 200 labels" --data raw_count --model "$MODEL" --threads 1
bad 1 'trailing' "bytes after the data" --data gz_trailing --model "$MODEL" --threads 1
bad 1 'gzip|crc|check' "a gzip file with a bad CRC" --data gz_crc --model "$MODEL" --threads 1
bad 1 'classes|outputs' "a model with fewer outputs (3) than the data has classes (5)" \
    --data gz --model dense:3 --threads 1

mkdir mixed
"$MKIDX" --classes 12 c12 >mkidx.log 2>&1 || fail "setup: fnet-mkidx --classes 12 c12" "$(cat mkidx.log)"
cp gz/train-* mixed/ && cp c12/t10k-* mixed/ || fail "setup: mixed dataset"
bad 1 'classes|outputs' "a test set with 12 classes for a model with 10 outputs" \
    --data mixed --model "$MODEL" --epochs 1 --threads 1

# --- bad checkpoints: runtime errors, exit 1 ------------------------------------------------

head -c "$(($(wc -c <a.ref) / 2))" a.ref >half.st
head -c 7 a.ref >seven.st
cp a.ref hdrlen.st && printf '\377' | dd of=hdrlen.st bs=1 seek=7 conv=notrunc status=none
cp a.ref json.st && printf 'Z' | dd of=json.st bs=1 seek=8 conv=notrunc status=none
: >empty.st
bad 1 'half\.st' "--load of a checkpoint cut in half" --data gz --load half.st --epochs 0 --threads 1
bad 1 'short|truncat' "--load of a 7-byte checkpoint" --data gz --load seven.st --epochs 0 --threads 1
bad 1 'header|length' "--load of a checkpoint with a huge header length" \
    --data gz --load hdrlen.st --epochs 0 --threads 1
bad 1 'json' "--load of a checkpoint whose JSON header is damaged" \
    --data gz --load json.st --epochs 0 --threads 1
bad 1 'empty\.st' "--load of an empty file" --data gz --load empty.st --epochs 0 --threads 1
bad 1 'no such|cannot open|not found|exist' "--load of a missing file" \
    --data gz --load missing.st --epochs 0 --threads 1
bad 1 'half\.st' "--load of a damaged checkpoint with --model and --save a.st" \
    --data gz --load half.st --model "$MODEL" --epochs 1 --threads 1 --save a.st
unchanged a.st a.ref "a run whose --load fails, with --save a.st"

# --- what a user tries next --------------------------------------------------------------------

# Evaluation needs no optimizer: a checkpoint trained with sgd evaluates without --optim sgd.
run sgdsave --data gz --model "$MODEL" --optim sgd --epochs 1 --seed 3 --threads 1 --save sgd.st \
    --json sgdsave.json
good "--optim sgd --save sgd.st"
run sgdeval --data gz --load sgd.st --epochs 0 --threads 1 --json sgdeval.json
good "--load sgd.st --epochs 0 without --optim (a checkpoint trained with sgd)"
[ "$(final_field sgdeval.json test_loss)" = "$(final_field sgdsave.json test_loss)" ] ||
    fail "--load sgd.st --epochs 0: a different test_loss than the run that saved" "$(seen)"
ok "--load --epochs 0 evaluates a checkpoint trained with another optimizer than the default"

# A full disk must not pass silently: the JSON lines are the results.
if [ -c /dev/full ] && [ -w /dev/full ]; then
    bad 1 'json|full|space|write' "--json /dev/full (a full disk)" \
        --data gz --model "$MODEL" --epochs 1 --threads 1 --json /dev/full
else
    ok "--json /dev/full: skipped, no writable /dev/full here"
fi

# --- pruning and sparse layers: the pruned model saved as CSR loads and scores the same -------

run prune --data gz --model dense:32,relu,dense:10 --epochs 2 --batch 16 --prune 0.8 \
    --prune-rounds 2 --finetune-epochs 1 --json prune.json --save pruned.st --save-sparse
good "--prune 0.8 --save-sparse"
grep -q '^epoch  4/4' prune.out || fail "2 epochs and 2 rounds of 1: epochs numbered 1..4" "$(seen)"
# 64·32 + 32·10 = 2368 weights, round(0.8·2368) = 1894 of them pruned
[ "$(final_field prune.json pruned)" = 1894 ] ||
    fail "the final JSON says 1894 weights pruned" "$(tail -n 1 prune.json)"
grep -q 'saved sparse: 2 dense layers stored as CSR; model sparse:32:nnz=[0-9]*,relu,sparse:10:nnz=' prune.out ||
    fail "--save-sparse converts both layers, each more than half pruned" "$(seen)"
acc=$(final_field prune.json test_acc)
run pruned_load --data gz --load pruned.st --epochs 0 --json pruned_load.json
good "--load of the sparse checkpoint"
[ "$(final_field pruned_load.json test_acc)" = "$acc" ] ||
    fail "the sparse checkpoint scores what the pruned model scored ($acc)" "$(seen)"
run sparse_set --data gz --model sparse:32:density=0.25,relu,dense:10 --epochs 3 --batch 16 \
    --sparse-update set --sparse-end 1
good "a sparse layer trained with SET"
grep -q 'sparse topology: 2 set updates' sparse_set.out ||
    fail "SET updates at the end of each epoch but the last" "$(seen)"

# --- bad usage: exit 2 ----------------------------------------------------------------------
# A CUDA device that cannot be used (no CUDA in the build, no GPU, or no GPU 1024, which is none
# anywhere) is bad usage (exit 2) with the reason; --tf32 on a backend without TF32 too.

bad 2 'model' "no --model and no --load" --data gz --threads 1
bad 2 'lr' "--lr -0.1" --data gz --model "$MODEL" --lr -0.1
bad 2 'lr' "--lr abc" --data gz --model "$MODEL" --lr abc
bad 2 'lr' "--lr without a value" --data gz --model "$MODEL" --lr
bad 2 'batch' "--batch -1" --data gz --model "$MODEL" --batch -1
bad 2 'val-split' "--val-split 1.5" --data gz --model "$MODEL" --val-split 1.5
bad 2 'epochs' "--epochs 0 without --load" --data gz --model "$MODEL" --epochs 0
bad 2 'unexpected|argument' "a bare word" --data gz --model "$MODEL" extra
bad 2 'line-search' "--optim lbfgs --line-search nope" --data gz --model "$MODEL" --optim lbfgs \
    --line-search nope
bad 2 'cuda:1024: (this build has no CUDA backend|no CUDA device|CUDA device 1024 does not exist)' \
    "--device cuda:1024" --data gz --model "$MODEL" --device cuda:1024
bad 2 'backend cpu has no TF32 mode' "--tf32 on the cpu backend" --data gz --model "$MODEL" --tf32
bad 2 'give density=D or nnz=K' "a sparse layer with neither density nor nnz" --data gz \
    --model sparse:64
bad 2 '70000 stored entries do not fit a 64 x' "a sparse layer with more entries than its matrix" \
    --data gz --model sparse:64:nnz=70000
bad 2 'prune' "--prune 1 (sparsity must be below 1)" --data gz --model "$MODEL" --prune 1
bad 2 'prune' "--prune -0.5" --data gz --model "$MODEL" --prune -0.5
bad 2 'need --prune' "--prune-rounds without --prune" --data gz --model "$MODEL" --prune-rounds 2
bad 2 'prune-schedule' "--prune-schedule sometimes" --data gz --model "$MODEL" --prune 0.5 \
    --prune-schedule sometimes
bad 2 'structured' "--prune-structured with the gradual schedule" --data gz --model "$MODEL" \
    --prune 0.5 --prune-schedule gradual --prune-structured
bad 2 'sparse-update' "--sparse-update sometimes" --data gz --model "$MODEL" --sparse-update sometimes
bad 2 'save' "--save-sparse without --save" --data gz --model "$MODEL" --save-sparse
bad 2 'sparse-update' "--sparse-zeta without --sparse-update" --data gz --model "$MODEL" \
    --sparse-zeta 0.2
bad 2 'gradual' "--prune-every with the iterative schedule" --data gz --model "$MODEL" \
    --prune 0.5 --prune-every 10
bad 2 'iterative' "--prune-rounds with the oneshot schedule" --data gz --model "$MODEL" \
    --prune 0.5 --prune-schedule oneshot --prune-rounds 2
bad 2 'unknown' "an unknown option --foo before others" --foo --data gz --model "$MODEL"
bad 2 'unknown' "an unknown option --foo at the end" --data gz --model "$MODEL" --foo
bad 2 'spec item' "a spec that does not parse: dense:64,relu,dense" --data gz --model dense:64,relu,dense
bad 2 'spec item' "a spec with a zero size: dense:0" --data gz --model dense:0
bad 2 'spec item' "a spec with a negative size: dense:-5" --data gz --model dense:-5
bad 2 'rank 20 is outside' "a low-rank rank above min(n_in, n_out)" --data gz \
    --model dense:16,lowrank:10:rank=20,dense:10
bad 2 'block 3 does not divide the size 10' "a circulant block that does not divide N" \
    --data gz --model circ:10:block=3
bad 2 'does not divide the input size 20' "a circulant block that does not divide n_in" \
    --data gz --model dense:20,circ:64:block=16,dense:10
bad 2 'fro-decay' "--fro-decay -1" --data gz --model "$MODEL" --fro-decay -1

echo "all $n checks passed"

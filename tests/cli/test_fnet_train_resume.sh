#!/usr/bin/env bash
# shellcheck disable=SC2015  # "A && B || fail" is meant: fail when either is false
# Runs that survive interruption, end to end (README "Long runs"): a run interrupted by SIGINT
# writes its checkpoint, exits 130 and says how to resume; --resume continues it to the same bits
# as an uninterrupted run (the checkpoints' tensor data compared byte for byte); SIGTERM exits
# 143; a second signal ends the process at once with the last checkpoint intact; --save-every,
# --keep, extending a finished run, L-BFGS; bad usage and resumes that do not fit refused with
# nothing overwritten. The signals are sent to a stopped process (SIGSTOP ... SIGCONT), so where
# they land does not depend on timing.
#
# usage: test_fnet_train_resume.sh BIN_DIR MKIDX
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-train "$@"
MODEL=dense:48,relu,dropout:0.25,dense:5
COMMON=(--data data --batch 32 --seed 4 --threads 2)

"$MKIDX" --train 6000 --side 12 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"
"$MKIDX" --train 6000 --side 12 --seed 9 other >mkidx.log 2>&1 ||
    fail "setup: fnet-mkidx other" "$(cat mkidx.log)"

# same_tensors A B WHAT: the two checkpoints hold the same tensors, bit for bit (their metadata
# differs: timings).
same_tensors() {
    cmp -s <(data_of "$1") <(data_of "$2") || fail "$3: the tensors of $1 and $2 differ" \
        "$(ls -l "$1" "$2")"
    ok "$3"
}

# epochs_logged FILE: the epoch numbers of a JSON-lines log, space-separated.
epochs_logged() {
    grep '"event":"epoch"' "$1" | sed 's/.*"epoch":\([0-9]*\).*/\1/' | tr '\n' ' '
}

# start NAME ARGS...: fnet-train ARGS in the background (PID), stdout/stderr in NAME.out/.err.
start() {
    LAST=$1
    shift
    "$PROG_PATH" "$@" </dev/null >"$LAST.out" 2>"$LAST.err" &
    PID=$!
}

# after_epoch JSON E: wait until the log shows epoch E (or the process ended), then stop it.
after_epoch() {
    local tries=0
    while ! grep -q "\"epoch\":$2," "$1" 2>/dev/null; do
        kill -0 "$PID" 2>/dev/null || break
        tries=$((tries + 1))
        [ "$tries" -lt 3000 ] || fail "waited 30 s for epoch $2 in $1" "$(show "$LAST.err")"
        sleep 0.01
    done
    kill -STOP "$PID" 2>/dev/null
}

# finish: let the stopped process go on and wait for it; sets RC.
finish() {
    kill -CONT "$PID" 2>/dev/null
    reap "$PID" "$LAST"
}

# --- one run in one go, the same run interrupted and resumed ----------------------------------

run whole --model "$MODEL" "${COMMON[@]}" --epochs 6 --save whole.safetensors --json whole.json
good "an uninterrupted run of 6 epochs"

start piece1 --model "$MODEL" "${COMMON[@]}" --epochs 6 --save run.safetensors \
    --json run.json
after_epoch run.json 1
kill -INT "$PID"
finish
no_sanitizer "SIGINT"
[ "$RC" -eq 130 ] || fail "SIGINT: expected exit 130" "$(seen)"
grep -q "interrupted by SIGINT: stopped on request" piece1.err &&
    grep -q "the run's checkpoint is run.safetensors" piece1.err &&
    grep -q "resume with: fnet-train --resume run.safetensors" piece1.err ||
    fail "SIGINT: no word of where it stopped, its checkpoint and how to resume" "$(seen)"
ok "SIGINT: exit 130, the checkpoint written, the resume command printed"
no_litter "SIGINT"
cp run.safetensors stopped.safetensors # the run in its second epoch, for the refusals below

run piece2 --resume run.safetensors
good "--resume run.safetensors"
grep -q "^resuming run.safetensors: " piece2.out || fail "the resume says where it goes on" "$(seen)"
same_tensors run.safetensors whole.safetensors \
    "interrupted and resumed: the same parameters, Adam state and sample order as in one go"
[ "$(epochs_logged run.json)" = "1 2 3 4 5 6 " ] ||
    fail "the appended log has every epoch once" "$(show run.json)"
[ "$(final_field run.json test_loss)" = "$(final_field whole.json test_loss)" ] ||
    fail "the same test loss" "$(tail -n 1 run.json)" "$(tail -n 1 whole.json)"
ok "the JSON log goes on (epochs 1-6 once) and ends at the same test loss"

# SIGTERM, at an epoch's end with --save-every: 143
start term --model "$MODEL" "${COMMON[@]}" --epochs 6 --save term.safetensors --save-every 1 \
    --json term.json
after_epoch term.json 2
kill -TERM "$PID"
finish
[ "$RC" -eq 143 ] && grep -q "interrupted by SIGTERM" term.err ||
    fail "SIGTERM: expected exit 143 and its name" "$(seen)"
ok "SIGTERM: exit 143"
run term2 --resume term.safetensors
good "--resume after SIGTERM"
same_tensors term.safetensors whole.safetensors "SIGTERM, resumed: the same bits again"

# a second signal: at once, by the signal; the last periodic checkpoint stays whole
start twice --model "$MODEL" "${COMMON[@]}" --epochs 6 --save twice.safetensors \
    --save-every 1 --json twice.json
after_epoch twice.json 2
kill -INT "$PID"
kill -TERM "$PID"
finish
# (which of the two pending signals comes first is the kernel's choice: 130 or 143)
[ "$RC" -eq 130 ] || [ "$RC" -eq 143 ] || fail "two signals: expected death by a signal" "$(seen)"
grep -q "interrupted by" twice.err && fail "two signals: the second did not end it at once" \
    "$(seen)"
ok "a second signal ends the process at once"
no_litter "two signals (a checkpoint half written is removed)"
reload twice_load twice.safetensors
ok "the checkpoint written before the signals loads"

# --- periodic and numbered checkpoints; extending a finished run ------------------------------

run keep --model "$MODEL" "${COMMON[@]}" --epochs 4 --save keep.safetensors --save-every 1 \
    --keep 2
good "--save-every 1 --keep 2"
[ -f keep.e3.safetensors ] && [ -f keep.e4.safetensors ] && [ ! -e keep.e2.safetensors ] &&
    [ ! -e keep.e1.safetensors ] || fail "--keep 2: the two newest numbered files" "$(ls)"
cmp -s keep.safetensors keep.e4.safetensors || fail "--keep: the checkpoint is the newest" "$(ls -l)"
ok "--keep 2 keeps keep.e3 and keep.e4, the checkpoint is the newest"

cp keep.e3.safetensors e3.safetensors
run extend --resume e3.safetensors --save e3.safetensors --json extend.json
good "resume a numbered copy"
[ "$(epochs_logged extend.json)" = "4 " ] || fail "only epoch 4 is left" "$(show extend.json)"
same_tensors e3.safetensors keep.safetensors "resumed from epoch 3: the same end"

run more --resume whole.safetensors --epochs 7 --save more.safetensors --json more.json
good "--epochs 7 extends a finished 6-epoch run"
[ "$(epochs_logged more.json)" = "7 " ] || fail "extending trains epoch 7" "$(show more.json)"

# L-BFGS: its history goes into the checkpoint; resumed from epoch 2 it ends as in one go
run lb --model dense:24,relu,dense:5 --data data --optim lbfgs --batch 1500 \
    --iters-per-batch 3 --epochs 4 --threads 2 --save lb.safetensors --save-every 1 --keep 4
good "L-BFGS with --save-every 1"
cp lb.safetensors lb_whole.safetensors
run lb2 --resume lb.e2.safetensors --save lb2.safetensors
good "L-BFGS resumed from epoch 2"
same_tensors lb2.safetensors lb_whole.safetensors "L-BFGS resumed: the same end"

# --- bad usage and resumes that do not fit: nothing overwritten -------------------------------

cp stopped.safetensors keep_me.safetensors
bad 2 "--save-every" "--save-every 0" --model "$MODEL" "${COMMON[@]}" --save x --save-every 0
bad 2 "--save-every" "--save-every -1" --model "$MODEL" "${COMMON[@]}" --save x --save-every -1
bad 2 "needs --save" "--save-every without --save" --model "$MODEL" "${COMMON[@]}" --save-every 1
bad 2 "needs --save" "--keep without --save" --model "$MODEL" "${COMMON[@]}" --keep 2
bad 2 "--model" "--resume with another --model" --resume stopped.safetensors --model dense:10
bad 2 "lr = 0.001, this one has 0.01" "--resume with another --lr" --resume stopped.safetensors --lr 0.01
bad 2 "the adam optimizer, not sgd" "--resume with another optimizer" --resume stopped.safetensors --optim sgd
bad 2 "started with --seed 4" "--resume with another seed" --resume stopped.safetensors --seed 5
bad 2 "same data" "--resume on another data set" --resume stopped.safetensors --data other
bad 2 "nothing to train" "--resume to fewer epochs than done" --resume stopped.safetensors --epochs 1
bad 2 "--load" "--resume with --load" --resume stopped.safetensors --load whole.safetensors
bad 2 "cannot be resumed" "--resume with --prune" --resume stopped.safetensors --prune 0.5
run plain --model "$MODEL" "${COMMON[@]}" --epochs 1 --save plain.safetensors --save-sparse
good "a checkpoint saved sparse"
bad 1 "no run to resume" "--resume of a checkpoint without a run" --resume plain.safetensors
bad 1 "No such file" "--resume of a missing file" --resume missing.safetensors
unchanged stopped.safetensors keep_me.safetensors "the refused resumes"
ok "refused resumes left the run's checkpoint as it was"
no_litter "the refused resumes"

echo "all $n checks passed"

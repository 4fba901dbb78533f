#!/usr/bin/env bash
# End-to-end tests of fnet-optim (L-BFGS and CG against the first-order optimizers) on a tiny
# synthetic IDX dataset: --help, a run bounded by epochs (so the same seed repeats it exactly),
# the JSON lines of every optimizer, the plot (PNG and SVG, or one warning line without
# gnuplot), and bad input. A few seconds, also under ASan/UBSan.
#
# usage: test_fnet_optim.sh BIN_DIR MKIDX
set -u
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-optim "$@"

"$MKIDX" --side 8 --classes 4 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"

run help --help
good "--help"
for opt in --network --optims --seconds --epochs --seed --threads --data --json --plot; do
    grep -q -- "$opt" help.out || fail "--help does not describe $opt" "$(seen)"
done
ok "--help exits 0 and describes the options"

NET=dense:64,relu,dense:4
ARGS=(--data data --network "$NET" --optims adam,sgd,lbfgs,cg --seconds 1000 --epochs 3
      --threads 2 --seed 3)
run first "${ARGS[@]}" --json first.json --plot p
good "adam, sgd, lbfgs and cg for 3 epochs each"
[ "$(grep -c '"event":"final"' first.json)" = 4 ] ||
    fail "--json: one final object per optimizer" "$(show first.json)"
for o in adam sgd lbfgs cg; do
    line=$(grep "\"event\":\"final\".*\"optim\":\"$o\"" first.json) ||
        fail "--json: no final object for $o" "$(show first.json)"
    printf '%s\n' "$line" | grep -q "\"model\":\"$NET\",\"optim\":\"$o\",\"params\":4420," ||
        fail "--json: $o's model and parameters (64*64+64 + 64*4+4)" "$line"
    acc=$(json_field "$line" test_acc)
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.8 && a <= 1) }' ||
        fail "$o: test accuracy $acc on learnable data (expected >= 0.8)" "$line"
    # the 3 passes end the run, not the 1000 s: first-order, 3 epochs of gradients; the solvers,
    # K iterations of line searches per pass, more
    e=$(json_field "$line" epochs)
    t=$(json_field "$line" train_seconds)
    awk -v e="$e" -v t="$t" -v o="$o" 'BEGIN { exit !(t < 100 && (o ~ /lbfgs|cg/ ? e >= 3 : e >= 3 && e < 4)) }' ||
        fail "$o: the run stops after 3 passes, ran $e epochs of gradients in $t s" "$line"
done
ok "every optimizer: parameters, accuracy over 0.8, stopped after 3 passes"

# the same seed, epoch-bounded: the same accuracies and evaluation counts
run again "${ARGS[@]}" --json again.json --plot -
good "the same run again"
for key in test_acc test_loss evals; do
    a=$(grep '"event":"final"' first.json | sed "s/.*\"$key\":\([^,}]*\).*/\1/" | tr '\n' ' ')
    b=$(grep '"event":"final"' again.json | sed "s/.*\"$key\":\([^,}]*\).*/\1/" | tr '\n' ' ')
    [ "$a" = "$b" ] || fail "$key differs between two runs of the same seed: $a / $b" \
        "$(show first.json)" "$(show again.json)"
done
ok "a second run repeats accuracies, losses and evaluation counts"

if command -v gnuplot >/dev/null; then
    [ -s p-net1.png ] && [ -s p-net1.svg ] && [ -s p-net1.dat ] && [ -s p-net1.gp ] ||
        fail "--plot p: p-net1.png, .svg, .dat, .gp" "$(ls -l)"
    grep -q 'training time (s)' p-net1.svg && grep -q 'test accuracy' p-net1.svg ||
        fail "p-net1.svg: axis labels" "$(head -c 300 p-net1.svg)"
    ok "--plot: PNG and SVG with labelled axes"
fi
mkdir nognuplot
ln -s "$(command -v env)" nognuplot/env
PATH=$WORK/nognuplot "$PROG_PATH" --data data --network "$NET" --optims adam --seconds 1000 \
    --epochs 1 --plot q --json /dev/null >nog.out 2>nog.err </dev/null
RC=$?
LAST=nog
[ "$RC" -eq 0 ] && [ "$(wc -l <nog.err)" = 1 ] &&
    grep -q '^fnet-optim: warning: gnuplot is not installed' nog.err && [ -s q-net1.gp ] ||
    fail "without gnuplot: exit 0, one warning line, the script written" "$(seen)"
grep -q '^  adam ' nog.out || fail "without gnuplot: the table still prints" "$(seen)"
ok "without gnuplot: the table and the plot's script, one warning"

bad 2 'unknown option' "an unknown option" --data data --bogus
bad 2 'optim' "an unknown optimizer" --data data --network "$NET" --optims adam,newton
bad 2 'seconds' "a zero budget" --data data --seconds 0
bad 1 'no-such-dir|open|No such' "a missing data directory" --data no-such-dir
bad 1 'cannot|no-such' "an unwritable --json" --data data --network "$NET" --optims adam \
    --epochs 1 --json no-such/x.json

# SIGTERM during a run: it ends there, its record is written, the program exits 143
interrupted TERM '\(.*parameters\), ' "SIGTERM during a run" --data data --seconds 60 \
    --epochs 1000000 --threads 2 --json sig.json
grep -q '"event":"final"' sig.json || fail "SIGTERM: the run's final record" "$(show sig.json)"

echo "all $n checks passed"

#!/usr/bin/env bash
# shellcheck disable=SC2015  # "A && B || fail" is meant: fail when either is false
# Checkpoints read from NumPy (tools/fnet_numpy.py): for every layer kind (dense, TT of 2, 3 and 4
# cores, low-rank, block-circulant, CSR sparse; with and without bias; a pruned model with its
# masks; a pruned model saved as CSR; relu, tanh, sigmoid, dropout), a model trained and saved by
# fnet-train on a tiny synthetic IDX dataset is rebuilt by the script from its tensors and
# metadata alone, and every test prediction and the test accuracy must be the ones
# `fnet-train --load CKPT --epochs 0 --predictions FILE` gives. Then bad files: exit 1, one line
# "fnet_numpy: error: <what> (<where>)". Needs python3 with NumPy (make test installs
# python3-numpy): without them the test fails, it does not skip. Some seconds, also under ASan.
#
# usage: test_numpy_interop.sh BIN_DIR MKIDX
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT=$ROOT/tools/fnet_numpy.py
# shellcheck source=harness.bash
. "$(dirname "$0")/harness.bash"
cli_setup fnet-train "$@"

# --- python3 with NumPy: $PYTHON, else the first python3 on PATH, else Debian's ----------------

PY=
tried=()
for cand in ${PYTHON:+"$PYTHON"} python3 /usr/bin/python3; do
    command -v "$cand" >/dev/null 2>&1 || { tried+=("$cand: not found"); continue; }
    if "$cand" -c 'import numpy' >/dev/null 2>&1; then
        PY=$cand
        break
    fi
    tried+=("$cand: no numpy ($("$cand" -c 'import numpy' 2>&1 | tail -n 1))")
done
[ -n "$PY" ] || fail "python3 with NumPy is required (Debian: apt-get install python3-numpy; \
make test installs it)" "${tried[@]}"
[ -f "$SCRIPT" ] || fail "setup: $SCRIPT is missing"
ok "python: $PY, NumPy $("$PY" -c 'import numpy; print(numpy.__version__)')"

# py NAME ARGS...: run the script with stdout in NAME.out, stderr in NAME.err; sets RC and LAST.
py() {
    LAST=$1
    shift
    "$PY" "$SCRIPT" "$@" </dev/null >"$LAST.out" 2>"$LAST.err"
    RC=$?
}

# pybad CODE KEYWORD WHAT ARGS...: the script must exit CODE with exactly one line
# "fnet_numpy: error: <what> (<where>)" on stderr that mentions KEYWORD (an extended regex,
# case-insensitive), and no Python traceback.
pybad() {
    local code=$1 keyword=$2 what=$3
    shift 3
    py bad "$@"
    [ "$RC" -eq "$code" ] || fail "$what: expected exit $code, got $RC" \
        "command: fnet_numpy.py $*" "$(seen)"
    [ "$(awk 'END { print NR }' bad.err)" -eq 1 ] &&
        grep -q '^fnet_numpy: error: .*)$' bad.err ||
        fail "$what: expected one line 'fnet_numpy: error: <what> (<where>)'" \
            "command: fnet_numpy.py $*" "$(seen)"
    grep -qiE "$keyword" bad.err || fail "$what: the error does not mention /$keyword/" "$(seen)"
    ok "$what: exit $code, one line naming /$keyword/"
}

# acc FILE: the test_acc printed on a "test_acc X ..." line of FILE.
acc() {
    awk '$1 == "test_acc" { print $2 }' "$1"
}

"$MKIDX" --side 8 --classes 4 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"
TEST_N=200 # fnet-mkidx's default test set

# --- every kind: fnet-train's predictions and accuracy, then the script's ----------------------

# agree NAME KIND_RE SPEC [TRAIN ARGS...]: train SPEC and save NAME.st (whose spec must match
# KIND_RE), evaluate the checkpoint with --predictions, run the script on it with --compare.
agree() {
    local name=$1 kind_re=$2 spec=$3
    shift 3
    run "$name-train" --data data --model "$spec" --epochs 3 --batch 20 --seed 2 --threads 2 \
        --save "$name.st" "$@"
    good "$name: training $spec $*"
    run "$name-eval" --data data --load "$name.st" --epochs 0 --threads 2 \
        --predictions "$name.pred"
    good "$name: --load $name.st --epochs 0 --predictions $name.pred"
    [ "$(awk 'END { print NR }' "$name.pred")" -eq "$TEST_N" ] ||
        fail "$name: fnet-train wrote $(awk 'END { print NR }' "$name.pred") predictions for" \
            "$TEST_N test images" "$(seen)"
    local saved
    saved=$(sed -n 's/^model \([^ ]*\): [0-9]* parameters.*/\1/p' "$name-eval.out")
    [[ $saved =~ $kind_re ]] ||
        fail "$name: the checkpoint's spec '$saved' does not match /$kind_re/" "$(seen)"
    py "$name-py" --data data "$name.st" --compare "$name.pred" --predictions "$name.np"
    [ "$RC" -eq 0 ] && [ ! -s "$name-py.err" ] ||
        fail "$name ($saved): the script does not agree with fnet-train" "$(seen)"
    grep -q "^compare: $TEST_N of $TEST_N predictions agree" "$name-py.out" ||
        fail "$name: no 'compare: $TEST_N of $TEST_N predictions agree' line" "$(seen)"
    cmp -s "$name.pred" "$name.np" ||
        fail "$name: the script's --predictions file differs from fnet-train's" \
            "$(cmp "$name.pred" "$name.np" 2>&1)"
    local a b
    a=$(acc "$name-eval.out")
    b=$(acc "$name-py.out")
    [ -n "$a" ] && [ "$a" = "$b" ] ||
        fail "$name: test_acc '$b' from the script, '$a' from fnet-train" "$(show "$name-py.out")"
    awk -v a="$a" 'BEGIN { exit !(a > 0.5) }' ||
        fail "$name: test_acc $a: the model did not learn, a weak check of the layout" \
            "$(show "$name-train.out")"
    ok "$name: $saved: $TEST_N of $TEST_N predictions and test_acc $a agree"
}

agree dense '^dense:32,relu,dense:4$' dense:32,relu,dense:4
agree dense-nobias '^dense:32:bias=0,sigmoid,dense:4$' dense:32:bias=0,sigmoid,dense:4
# TT: modes chosen by the planner (4 cores), 3 cores of unequal modes and ranks, 2 without bias
agree tt4 '^tt:16:ranks=2x2x2:in=[0-9x]+:out=[0-9x]+,relu,dense:4$' tt:16:rank=2,relu,dense:4
agree tt3 '^tt:32:ranks=3x2:in=4x4x4:out=2x4x4,tanh,dense:4$' \
    tt:32:ranks=3x2:in=4x4x4:out=2x4x4,tanh,dense:4
agree tt2 '^tt:16:ranks=3:in=8x8:out=4x4:bias=0,relu,dense:4$' \
    tt:16:rank=3:in=8x8:out=4x4:bias=0,relu,dense:4
# tensor ring, Tucker (Tucker-2 and tensorized, without bias), CP
agree tr '^tr:16:ranks=2x2x2:ring=2:in=[0-9x]+:out=[0-9x]+,relu,dense:4$' \
    tr:16:rank=2:ring=2,relu,dense:4
agree tucker2 '^tucker:24:ranks=4x5:in=64:out=24,tanh,dense:4$' tucker:24:ranks=4x5,tanh,dense:4
agree tucker4 '^tucker:16:ranks=2x3x3x2:in=8x8:out=4x4:bias=0,relu,dense:4$' \
    tucker:16:ranks=2x3x3x2:in=8x8:out=4x4:bias=0,relu,dense:4
agree cp '^cp:24:rank=6:in=8x8:out=4x6,relu,dense:4$' cp:24:rank=6,relu,dense:4
agree lowrank '^lowrank:24:rank=5,relu,dense:4$' lowrank:24:rank=5,relu,dense:4
agree lowrank-nobias '^lowrank:24:rank=5:bias=0,tanh,dropout:0.3,dense:4$' \
    lowrank:24:rank=5:bias=0,tanh,dropout:0.3,dense:4
agree circ8 '^circ:32:block=8,relu,dense:4$' circ:32:block=8,relu,dense:4
agree circ16-nobias '^circ:32:block=16:bias=0,sigmoid,dense:4$' \
    circ:32:block=16:bias=0,sigmoid,dense:4
agree sparse '^sparse:32:nnz=[0-9]+,relu,dense:4$' sparse:32:density=0.3,relu,dense:4
# every kind in one model
tail=tanh,lowrank:12:rank=3,sigmoid,circ:8:block=4,dropout:0.1,dense:4
agree mixed "^sparse:32:nnz=[0-9]+,relu,tt:16:ranks=[0-9x:inout=]+,$tail\$" \
    "sparse:32:density=0.5,relu,tt:16:rank=2,$tail"

# pruned models: the masks are in the file, and applied
agree pruned '^dense:32,relu,dense:4$' dense:32,relu,dense:4 --prune 0.7 \
    --prune-schedule oneshot --finetune-epochs 1
grep -q 'layers.0.weight_mask' pruned.st || fail "pruned: the checkpoint holds no weight_mask"
agree pruned-kinds '^tt:16:.*,relu,lowrank:12:rank=4,relu,circ:8:block=4,relu,dense:4$' \
    tt:16:rank=3,relu,lowrank:12:rank=4,relu,circ:8:block=4,relu,dense:4 --prune 0.5 \
    --prune-scope layer --prune-schedule oneshot --finetune-epochs 1
for t in layers.0.core0_mask layers.2.U_mask layers.2.V_mask layers.4.c_mask; do
    grep -q "$t" pruned-kinds.st || fail "pruned-kinds: the checkpoint holds no $t"
done
ok "the pruned checkpoints hold the masks of dense, TT, low-rank and circulant tensors"
agree save-sparse '^sparse:32:nnz=[0-9]+,relu,sparse:16:nnz=[0-9]+,relu,sparse:4:nnz=[0-9]+$' \
    dense:32,relu,dense:16,relu,dense:4 --prune 0.8 --prune-scope layer \
    --prune-schedule oneshot --finetune-epochs 1 --save-sparse

# --- the script as a module -------------------------------------------------------------------

PYTHONPATH=$ROOT/tools "$PY" - tt3.st data >module.out 2>&1 <<'EOF' ||
import sys
import numpy as np
import fnet_numpy
net = fnet_numpy.load(sys.argv[1])
images, labels = fnet_numpy.load_idx(sys.argv[2], "t10k")
logits = net(fnet_numpy.scale(images))
assert logits.shape == (len(labels), net.classes) and logits.dtype == np.float64, logits.shape
assert net.layers[0].W.shape == (32, 64), net.layers[0].W.shape
print(int(np.sum(np.argmax(logits, axis=1) == labels)))
EOF
    fail "import fnet_numpy: load, load_idx, scale and net(x)" "$(cat module.out)"
right=$(cat module.out)
[ "$(awk -v r="$right" -v n="$TEST_N" 'BEGIN { printf "%.4f", r / n }')" = \
    "$(acc tt3-eval.out)" ] ||
    fail "import fnet_numpy: $right of $TEST_N right, fnet-train says $(acc tt3-eval.out)"
ok "import fnet_numpy: net(x) gives (n, classes) float64 logits, $right of $TEST_N right"

# --- predictions that differ, bad usage ---------------------------------------------------------

awk 'NR == 7 { print ($1 + 1) % 4; next } { print }' dense.pred >off.pred
pybad 1 'differ.*index 6' "--compare with one prediction changed" --data data dense.st \
    --compare off.pred
head -n 5 dense.pred >short.pred
pybad 1 '5 predictions' "--compare with too few lines" --data data dense.st --compare short.pred
py limit --data data dense.st --limit 50 --compare dense.pred
[ "$RC" -eq 0 ] && grep -q '^compare: 50 of 50 predictions agree' limit.out ||
    fail "--limit 50 --compare: the first 50 agree" "$(seen)"
ok "--limit 50 compares the first 50 predictions"
pybad 2 'unrecognized|bogus' "an unknown option" --data data dense.st --bogus
pybad 2 'checkpoint' "no checkpoint" --data data
py help --help
[ "$RC" -eq 0 ] && grep -q -- '--compare' help.out || fail "--help" "$(seen)"
ok "--help exits 0 and lists --compare"

# --- bad files: exit 1, one line ----------------------------------------------------------------

# craft OUT PYTHON: OUT written by PYTHON code given the good header (h, a dict), the data (d)
# and a write(out, header, data) function.
craft() {
    local out=$1 code=$2
    "$PY" - dense.st "$out" >craft.log 2>&1 <<EOF || fail "setup: crafting $out" "$(cat craft.log)"
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
h, d = json.loads(blob[8:8 + n]), blob[8 + n:]
def write(out, header, data):
    text = json.dumps(header).encode()
    open(out, "wb").write(struct.pack("<Q", len(text)) + text + data)
$code
EOF
}

printf 'hello, not a checkpoint\n' >text.st
pybad 1 'not a safetensors' "a text file" --data data text.st
: >empty.st
pybad 1 'not a safetensors' "an empty file" --data data empty.st
head -c "$(($(wc -c <dense.st) / 2))" dense.st >half.st
pybad 1 'truncated|data_offsets|header length' "a checkpoint cut in half" --data data half.st
head -c 100 dense.st >hundred.st
pybad 1 'header length|not a safetensors' "a checkpoint cut inside its header" \
    --data data hundred.st
craft nometa.st 'del h["__metadata__"]; write(sys.argv[2], h, d)'
pybad 1 'metadata' "a safetensors file without __metadata__" --data data nometa.st
craft torch.st 'h["__metadata__"] = {"format": "pt"}; write(sys.argv[2], h, d)'
pybad 1 "format.*factornet" "a safetensors file of another format" --data data torch.st
craft nospec.st 'del h["__metadata__"]["spec"]; write(sys.argv[2], h, d)'
pybad 1 "spec" "factornet metadata without a spec" --data data nospec.st
craft conv.st 'h["__metadata__"]["spec"] = "conv:32,relu,dense:4"; write(sys.argv[2], h, d)'
pybad 1 "unknown layer kind 'conv'" "a layer kind the script does not know" --data data conv.st
craft shape.st 'h["__metadata__"]["spec"] = "dense:31,relu,dense:4"; write(sys.argv[2], h, d)'
pybad 1 "layers\.0\.weight.*shape|shape.*layers\.0\.weight" "a tensor of the wrong shape" \
    --data data shape.st
craft missing.st 'del h["layers.0.bias"]; write(sys.argv[2], h, d)'
pybad 1 "layers\.0\.bias.*missing|missing.*layers\.0\.bias" "a missing tensor" \
    --data data missing.st
craft dtype.st 'h["layers.2.bias"]["dtype"] = "I32"; write(sys.argv[2], h, d)'
pybad 1 "dtype" "a tensor of the wrong dtype" --data data dtype.st
pybad 1 'no such|not found' "a checkpoint that does not exist" --data data missing-file.st
pybad 1 'no such|not found' "a data directory that does not exist" --data no-such-dir dense.st

echo "all $n checks passed"

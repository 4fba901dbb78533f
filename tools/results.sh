#!/usr/bin/env bash
# Regenerate docs/results.md and its plots (docs/results/): the full comparison of every
# variant on Fashion-MNIST over 3 seeds (fnet-compare), the compression of a trained dense
# network at a range of ranks and sparsities (fnet-compress --sweep) and the pruning curve
# (fnet-prune). About 30 minutes (21 before the tensor-ring, Tucker and CP variants) on a 2-core machine; run it on a quiet one.
#
# usage: tools/results.sh [BUILD_DIR] [DATA_DIR]   (defaults: build, $FNET_DATA or Debian's)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
DATA=${2:-${FNET_DATA:-/usr/share/datasets/fashion-mnist}}
BUILD=$(cd "$BUILD" && pwd)
DATA=$(cd "$DATA" && pwd)
B=$BUILD/bin
OUT=$ROOT/docs/results
MD=$ROOT/docs/results.md
WIDE=dense:1024,relu,dense:1024,relu,dense:10
for p in fnet-compare fnet-train fnet-compress fnet-prune; do
    [ -x "$B/$p" ] || { echo "results.sh: $B/$p is missing: build first (make build)" >&2; exit 1; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# everything is made in $TMP/out and moved to docs/ at the end: a run that fails leaves the
# committed results as they were; the plots' scripts name their data by relative paths
mkdir -p "$TMP/out"
cd "$TMP/out"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)

step() { echo "results.sh: $*" >&2; }
step "fnet-compare, every variant, 3 seeds"
"$B/fnet-compare" --data "$DATA" --seeds 3 --json compare.jsonl --csv compare.csv \
    --plot compare >"$TMP/compare.txt"
step "the dense wide network, trained once for the compression sweeps"
"$B/fnet-train" --data "$DATA" --model "$WIDE" --batch 256 --epochs 10 --save "$TMP/wide.safetensors" \
    >"$TMP/train.txt"
step "fnet-compress: TT-SVD, truncated SVD, pruning"
"$B/fnet-compress" --load "$TMP/wide.safetensors" --data "$DATA" --to tt --sweep 4,8,16,32 \
    --json compress-tt.jsonl --plot compress-tt >"$TMP/tt.txt"
"$B/fnet-compress" --load "$TMP/wide.safetensors" --data "$DATA" --to lowrank --sweep 8,16,32,64 \
    --json compress-lowrank.jsonl --plot compress-lowrank >"$TMP/lowrank.txt"
"$B/fnet-compress" --load "$TMP/wide.safetensors" --data "$DATA" --to prune --sweep 0.5,0.8,0.9,0.95,0.98 \
    --json compress-prune.jsonl --plot compress-prune >"$TMP/prune1.txt"
step "fnet-prune: the iterative pruning curve"
"$B/fnet-prune" --load "$TMP/wide.safetensors" --data "$DATA" --json prune.jsonl \
    --plot prune >"$TMP/prune.txt"
minutes=$(( ($(date +%s) - t0 + 30) / 60 ))
mkdir -p "$OUT"
cp ./* "$OUT/"

# the machine, in words
cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1) (CPU family $(lscpu 2>/dev/null |
    sed -n 's/^CPU family: *//p' | head -n 1), model $(lscpu 2>/dev/null | sed -n 's/^Model: *//p' | head -n 1))"
blas=$(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null ||
       dpkg-query -W -f='${Version}' libopenblas0 2>/dev/null || echo unknown)
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    core="OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
else
    core="OPENBLAS_CORETYPE unset (its kernels chosen for the CPU; Debian 12's 0.3.21 falls back
to Prescott on a CPU it does not know, such as family 6 model 207)"
fi
# from a table's header line to the end of the table (the first empty line after it)
table() { sed -n "/$2/,/^\$/p" "$1" | sed '/^$/d; /^plot:/d; /^saved /d'; }
sweep() { sed -n '/compression  acc_before/,/^plot:/p' "$1" | sed '/^plot:/d'; }
dense_acc=$(sed -n 's/^test_acc \([0-9.]*\) .*/\1/p' "$TMP/train.txt")

{
cat <<HEAD
# Results

Every number on this page comes from one run of \`tools/results.sh\` (\`make results\`; started
$started, $minutes minutes) on $(nproc) cores of an $cpu, Debian 12,
OpenBLAS $blas, $core, a Release build, $(nproc) threads (the default). The machine is shared and its speed
varies between runs by some per cent: compare ratios measured side by side, not absolute numbers
across pages. The raw records are beside the plots in [results/](results/): JSON lines and CSV,
and each plot's data and gnuplot script.

## Every variant, 3 seeds (\`fnet-compare --seeds 3\`)

Fashion-MNIST, 60,000 training and 10,000 test images; every variant trained with Adam (lr 1e-3,
batch 256, 10 epochs) unless its line below says otherwise; mean ± sample standard deviation over
seeds 1, 2 and 3.

![test accuracy against stored parameters, and training throughput](results/compare.png)

\`\`\`
$(table "$TMP/compare.txt" '^variant ')
\`\`\`

\`\`\`
$(sed -n '/^params: stored parameters/,$p' "$TMP/compare.txt" | sed '/^plot:/d')
\`\`\`

## Compressing a trained dense network (\`fnet-compress --sweep\`)

The wide dense network trained once (Adam, batch 256, 10 epochs; test accuracy $dense_acc), then
its middle layer (1024×1024) replaced by the TT-SVD or the truncated SVD at each rank, or the
whole network pruned by global magnitude at each sparsity in one shot; each followed by 2 epochs
of fine-tuning (Adam, lr 3e-4, batch 256). \`acc_after\` is right after compressing,
\`acc_tuned\` after the fine-tuning; compression counts the compressed layers' parameters (for
pruning: all of them over those kept).

### TT-SVD of the middle layer

Right after the TT-SVD the network is near chance at every rank here: a 1024×1024 layer trained
for 10 epochs from a random start is close to full rank (its 32 largest singular values hold 40%
of Σσ²), so at rank 16 the TT keeps a quarter of the layer's Frobenius norm (relative error 0.97;
both measured once with tools/fnet_numpy.py, 2026-12-06) and the outputs of the layer shrink with
it. Two epochs of fine-tuning relearn the layer from
there; the modes are the planner's factorization with the largest in the middle (4x8x8x4 both
ways), where the TT has the most parameters at a given rank.

![TT-SVD sweep](results/compress-tt.png)

\`\`\`
$(sweep "$TMP/tt.txt")
\`\`\`

### Truncated SVD of the middle layer

![truncated SVD sweep](results/compress-lowrank.png)

\`\`\`
$(sweep "$TMP/lowrank.txt")
\`\`\`

### One-shot magnitude pruning

![pruning sweep](results/compress-prune.png)

\`\`\`
$(sweep "$TMP/prune1.txt")
\`\`\`

## Iterative pruning (\`fnet-prune\`)

The same trained network pruned step by step (global magnitude) to each sparsity, with 2 epochs
of fine-tuning (Adam, lr 3e-4) after each step: Han et al.'s curve.

![iterative pruning](results/prune.png)

\`\`\`
$(table "$TMP/prune.txt" '^ sparsity  params kept')
\`\`\`
HEAD
} >"$MD"
step "wrote $MD and $OUT/ in $minutes minutes"

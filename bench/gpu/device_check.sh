#!/usr/bin/env bash
# The GPU session's one run: what the machine has, the CUDA build, the gpu-labelled tests,
# fnet-bench --device cuda and PyTorch (bench/gpu/torch_bench.py) on the same training steps, and
# one summary table, printed last. Every step is timed, logged and bounded by `timeout` under
# one overall deadline; a failed or skipped step does not stop the ones after it. docs/gpu.md.
#
#   OUT=DIR bash bench/gpu/device_check.sh      (from the repository root; exit 0 when all passed)
#
# Writes at most 8 files to $OUT: summary.txt, env.log, build.log, ctest.log, fnet_bench.log,
# fnet_bench.jsonl, torch.log, torch.jsonl. Settings (environment):
#   FNET_CHECK_SECONDS  overall deadline in seconds (default 420); give the device call more
#   FNET_BUILD_DIR      build directory (default build-devcheck: Ninja, so not make cuda's)
#   FNET_JOBS           build jobs (default nproc)
#   FNET_BENCH_SECONDS, FNET_BENCH_REPEAT   fnet-bench's --seconds and --repeat (0.5, 5)
#   FNET_DEBS           a folder of Debian 12 .deb files (bench/gpu/stage_debs.sh) unpacked and
#                       used only when the machine lacks a library the build needs (default
#                       .gpu-debs); PYTHON  the Python with PyTorch (default python3)
#   FNET_CHECK_CUDA, FNET_CTEST_ARGS, FNET_BENCH_DEVICE, FNET_TORCH_ARGS   ON, "-L gpu", cuda,
#                       "": other values are for trying the script on a machine without a GPU
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd) || exit 1
cd "$ROOT" || exit 1
OUT=${OUT:-/tmp/fnet-device-check}
BUDGET=${FNET_CHECK_SECONDS:-420}
BUILD=${FNET_BUILD_DIR:-build-devcheck}
JOBS=${FNET_JOBS:-$(nproc 2>/dev/null || echo 4)}
BENCH_SECONDS=${FNET_BENCH_SECONDS:-0.5}
BENCH_REPEAT=${FNET_BENCH_REPEAT:-5}
DEBS=${FNET_DEBS:-.gpu-debs}
PYTHON=${PYTHON:-python3}
WITH_CUDA=${FNET_CHECK_CUDA:-ON}
CTEST_ARGS=${FNET_CTEST_ARGS:--L gpu}
BENCH_DEVICE=${FNET_BENCH_DEVICE:-cuda}
TORCH_ARGS=${FNET_TORCH_ARGS:-}
RESERVE=15 # seconds kept for the summary

mkdir -p "$OUT" || exit 1
rm -f "$OUT"/{summary.txt,env.log,build.log,ctest.log,fnet_bench.log,fnet_bench.jsonl,torch.log,torch.jsonl}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fnet-device-check.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
DEADLINE=$((START + BUDGET))
: >"$WORK/steps.tsv"
: >"$OUT/fnet_bench.jsonl"
: >"$OUT/torch.jsonl"

# The configurations both sides run: name, fnet-bench spec, batch (torch_bench.py's CONFIGS).
CASES="seed|dense:64,relu,dense:32,relu,dense:10|32
wide|dense:1024,relu,dense:1024,relu,dense:10|4096
wide256|dense:1024,relu,dense:1024,relu,dense:10|256
big|dense:4096,relu,dense:4096,relu,dense:10|1024
tt|dense:1024,relu,tt:1024:rank=8:in=4x8x8x4:out=4x8x8x4,relu,dense:10|256"
printf '%s\n' "$CASES" >"$WORK/cases.txt"

log() { printf '%s\n' "$*"; }
elapsed() { echo $(($(date +%s) - START)); }

# record NAME STATUS SECONDS: one row of the steps table.
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$WORK/steps.tsv"; }

# run_step NAME LIMIT LOG CMD...: CMD under `timeout`, output appended to LOG, at most LIMIT
# seconds and never past the deadline (less the summary's reserve). Returns CMD's status, 124 on
# a timeout; a step with under 5 seconds left is skipped (status 125).
run_step() {
    local name=$1 limit=$2 logf=$3 left t0 rc status secs
    shift 3
    left=$((DEADLINE - $(date +%s) - RESERVE))
    ((limit > left)) && limit=$left
    if ((limit < 5)); then
        log "-- $name: skipped, out of time (at $(elapsed) s)"
        record "$name" "skipped: out of time" 0
        return 125
    fi
    log "-- $name (limit ${limit}s, at $(elapsed) s)"
    printf '\n$ %s\n' "$*" >>"$logf"
    t0=$(date +%s%N)
    timeout -k 10 "$limit" "$@" >>"$logf" 2>&1
    rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    case $rc in
        0) status=ok ;;
        124 | 137) status="TIMED OUT after ${limit}s" ;;
        *) status="FAILED (exit $rc)" ;;
    esac
    log "   $status in ${secs}s"
    record "$name" "$status" "$secs"
    return $rc
}

skip() { # skip NAME WHY
    log "-- $1: skipped: $2"
    record "$1" "skipped: $2" 0
}

# --- a. the machine ---------------------------------------------------------------------------
ENV_LOG=$OUT/env.log
GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
{
    echo "factornet $GIT_REV, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -srm), $(nproc) cores"
    grep -m1 PRETTY_NAME /etc/os-release 2>/dev/null
} >>"$ENV_LOG"
if command -v nvidia-smi >/dev/null 2>&1; then
    run_step "nvidia-smi" 30 "$ENV_LOG" nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
else
    echo "nvidia-smi: not found" >>"$ENV_LOG"
    skip "nvidia-smi" "not found (no NVIDIA driver here)"
fi
GPU=$(grep -A1 '^name, memory.total' "$ENV_LOG" | tail -n +2 | head -1)
GPU=${GPU:-none}

# --- e. PyTorch, first: it needs no build (a slow build cannot take its numbers) and runs in the
# machine's own environment, before anything below changes it ----------------------------------
if "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
    # shellcheck disable=SC2086 # FNET_TORCH_ARGS is words
    run_step "torch_bench.py" 150 "$OUT/torch.log" env PYTHONUNBUFFERED=1 \
        "$PYTHON" bench/gpu/torch_bench.py --json "$OUT/torch.jsonl" $TORCH_ARGS
else
    "$PYTHON" -c 'import torch' >>"$OUT/torch.log" 2>&1
    skip "torch_bench.py" "$PYTHON cannot import torch"
fi

# --- b0. what the build needs -----------------------------------------------------------------
NVCC=/usr/local/cuda/bin/nvcc
[ -x "$NVCC" ] || NVCC=$(command -v nvcc 2>/dev/null || true)
{
    echo
    echo "tools:"
    for t in cmake ninja cc gcc g++ "$NVCC" pkg-config "$PYTHON"; do
        if [ -n "$t" ] && command -v "$t" >/dev/null 2>&1; then
            printf '  %-12s %s: %s\n' "$(basename "$t")" "$(command -v "$t")" \
                "$("$t" --version 2>&1 | grep -m1 -iE 'version|release|[0-9]+\.[0-9]+')"
        fi
    done
} >>"$ENV_LOG"

# missing_deps: what of the build's needs this machine lacks, as words ("" when none).
missing_deps() {
    local m="" mod
    command -v cmake >/dev/null 2>&1 || m="$m cmake"
    command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || m="$m cc"
    if [ "$WITH_CUDA" = ON ]; then
        [ -n "$NVCC" ] && [ -x "$NVCC" ] || m="$m nvcc"
        command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || m="$m c++"
    fi
    if command -v pkg-config >/dev/null 2>&1; then
        for mod in openblas lapacke fftw3f zlib cmocka; do
            pkg-config --exists "$mod" 2>/dev/null || m="$m $mod"
        done
    else
        m="$m pkg-config openblas lapacke fftw3f zlib cmocka"
    fi
    echo "${m# }"
}

# has_lib SONAME: whether the loader already finds SONAME (no grep -q: under pipefail its early
# exit would fail the pipeline).
has_lib() { ldconfig -p 2>/dev/null | grep "[[:space:]]$1 " >/dev/null; }

# unpack_debs: the carried Debian 12 packages of what is missing, unpacked into a private root;
# pkg-config, the compiler, the linker and the loader pointed at it for the fnet steps alone
# (PyTorch's step ran before, in the machine's own environment). A runtime library the machine
# has already is left out, so that nothing of the machine's is shadowed without need.
unpack_debs() {
    local f pkg want l t pc b n=0
    # beside the build directory, at the same path every run: its CMake cache names it
    rm -rf "$BUILD-deps" && mkdir -p "$BUILD-deps/pc" || return
    SYSROOT=$(cd "$BUILD-deps" && pwd)
    ML=$SYSROOT/usr/lib/x86_64-linux-gnu
    for f in "$DEBS"/*.deb; do
        pkg=$(dpkg-deb -f "$f" Package 2>/dev/null) || continue
        case $pkg in
            libopenblas* | liblapacke* | libtmglib*) want="openblas lapacke" ;;
            libgfortran5) want="openblas lapacke" && has_lib libgfortran.so.5 && want="" ;;
            libquadmath0) want="openblas lapacke" && has_lib libquadmath.so.0 && want="" ;;
            libfftw3*) want="fftw3f" ;;
            libgomp1) want="fftw3f" && has_lib libgomp.so.1 && want="" ;;
            libcmocka*) want="cmocka" ;;
            zlib1g | zlib1g-dev) want="zlib" ;;
            pkgconf | pkgconf-bin | libpkgconf3) want="pkg-config" ;;
            *) want="" ;;
        esac
        for w in $want; do
            if [[ " $MISSING " == *" $w "* ]]; then
                dpkg-deb -x "$f" "$SYSROOT" >>"$ENV_LOG" 2>&1 && n=$((n + 1))
                echo "  unpacked $pkg" >>"$ENV_LOG"
                break
            fi
        done
    done
    # absolute links (zlib1g-dev's libz.so) pointed into the root
    while IFS= read -r l; do
        t=$(readlink "$l")
        [ -e "$SYSROOT$t" ] && ln -sfn "$SYSROOT$t" "$l"
    done < <(find "$SYSROOT" -type l -lname '/*')
    # the .pc files' /usr made the root's, and the links Debian's alternatives would make
    # (lapacke.pc requires lapack.pc)
    while IFS= read -r pc; do
        sed -i -E "s#(^|[=[:space:]]|-[IL])/usr#\\1$SYSROOT/usr#g" "$pc"
    done < <(find "$SYSROOT" -name '*.pc' -type f)
    for pc in "$ML"/openblas-pthread/pkgconfig/*.pc; do
        [ -e "$pc" ] || continue
        b=$(basename "$pc" .pc)
        ln -sf "$pc" "$SYSROOT/pc/${b%-openblas}.pc"
    done
    export PATH=$SYSROOT/usr/bin:$PATH
    export PKG_CONFIG_PATH=$SYSROOT/pc:$ML/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    export C_INCLUDE_PATH=$SYSROOT/usr/include${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}
    local libs=$ML:$ML/openblas-pthread:$SYSROOT/lib/x86_64-linux-gnu
    export LIBRARY_PATH=$libs${LIBRARY_PATH:+:$LIBRARY_PATH}
    export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export CMAKE_PREFIX_PATH=$SYSROOT/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
    DEBS_USED="yes: $n packages of $DEBS unpacked"
}

MISSING=$(missing_deps)
MISSING_BEFORE=$MISSING
DEBS_USED=no
if [ -n "$MISSING" ] && compgen -G "$DEBS/*.deb" >/dev/null; then
    echo "missing: $MISSING; unpacking what is missing from $DEBS/*.deb" >>"$ENV_LOG"
    unpack_debs
    MISSING=$(missing_deps)
elif [ -n "$MISSING" ]; then
    DEBS_USED="no: none carried in $DEBS (bench/gpu/stage_debs.sh)"
fi
echo "missing for the build: ${MISSING_BEFORE:-nothing}; carried .debs: $DEBS_USED; missing" \
    "now: ${MISSING:-nothing}" >>"$ENV_LOG"
log "-- needs: missing ${MISSING_BEFORE:-nothing}; carried .debs: $DEBS_USED"
[ "$MISSING" != "$MISSING_BEFORE" ] && log "   missing after unpacking them: ${MISSING:-nothing}"

CAN_BUILD=yes
CAN_TEST=yes
for w in $MISSING; do
    case $w in
        cmocka) CAN_TEST="no: cmocka missing" ;;
        *) CAN_BUILD="no: missing ${MISSING}" ;;
    esac
done
[ "$CAN_BUILD" = yes ] || CAN_TEST=$CAN_BUILD

# --- b. configure and build -------------------------------------------------------------------
# The build goes on past a failing target (-k), so that a test that does not compile leaves
# fnet-bench and the other tests built; the binaries of an earlier run are removed first.
BUILT=no
WERROR_NOTE=""
BENCH=$BUILD/bin/fnet-bench
if [ "$CAN_BUILD" = yes ]; then
    GEN=Ninja KEEP_GOING=(-k 0)
    command -v ninja >/dev/null 2>&1 || GEN="Unix Makefiles" KEEP_GOING=(-k)
    CFG=(-S . -B "$BUILD" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DFNET_WITH_CUDA="$WITH_CUDA"
        -DFNET_WERROR=ON)
    [ "$WITH_CUDA" = ON ] && CFG+=(-DCMAKE_CUDA_COMPILER="$NVCC")
    [ "$CAN_TEST" = yes ] || CFG+=(-DFNET_BUILD_TESTS=OFF)
    rm -f "$BENCH" "$BUILD"/tests/test_* 2>/dev/null
    if run_step "cmake configure" 90 "$OUT/build.log" cmake "${CFG[@]}"; then
        if run_step "cmake build -j$JOBS" 240 "$OUT/build.log" \
            cmake --build "$BUILD" -j "$JOBS" -- "${KEEP_GOING[@]}"; then
            BUILT=yes
        else
            BUILT=partly
            # a warning this machine's compiler adds must not cost the run its measurements:
            # build again without -Werror (the summary says so)
            if grep -q '\[-Werror' "$OUT/build.log" &&
                run_step "cmake configure, FNET_WERROR=OFF" 60 "$OUT/build.log" \
                    cmake -S . -B "$BUILD" -DFNET_WERROR=OFF &&
                run_step "cmake build without -Werror" 240 "$OUT/build.log" \
                    cmake --build "$BUILD" -j "$JOBS" -- "${KEEP_GOING[@]}"; then
                BUILT=yes
                WERROR_NOTE="built only without -Werror: see the warnings in build.log"
            fi
        fi
    fi
else
    skip "cmake configure" "$CAN_BUILD"
    skip "cmake build" "$CAN_BUILD"
fi

# --- c. the gpu-labelled tests ----------------------------------------------------------------
if [ "$BUILT" != no ] && [ "$CAN_TEST" = yes ]; then
    # leave fnet-bench a minute
    left=$((DEADLINE - $(date +%s) - RESERVE - 60))
    ((left > 150)) && left=150
    # shellcheck disable=SC2086 # FNET_CTEST_ARGS is words
    run_step "ctest $CTEST_ARGS" "$left" "$OUT/ctest.log" \
        ctest --test-dir "$BUILD" $CTEST_ARGS --output-on-failure -V -j4 --timeout 300
elif [ "$BUILT" != no ]; then
    skip "ctest $CTEST_ARGS" "$CAN_TEST"
else
    skip "ctest $CTEST_ARGS" "no build"
fi

# --- d. fnet-bench on the GPU ------------------------------------------------------------------
if [ ! -x "$BENCH" ]; then
    skip "fnet-bench" "not built"
elif [[ $("$BENCH" --help 2>&1) != *--device* ]]; then
    "$BENCH" --help >>"$OUT/fnet_bench.log" 2>&1
    skip "fnet-bench" "this fnet-bench has no --device option"
else
    while IFS='|' read -r name spec batch; do
        run_step "fnet-bench $name" 60 "$OUT/fnet_bench.log" "$BENCH" --device "$BENCH_DEVICE" \
            --model "$spec" --batch "$batch" --seconds "$BENCH_SECONDS" --repeat "$BENCH_REPEAT" \
            --json "$WORK/fnet_$name.jsonl"
        # each run opens its --json afresh: gather them (the lines written before a failure too)
        [ -f "$WORK/fnet_$name.jsonl" ] && cat "$WORK/fnet_$name.jsonl" >>"$OUT/fnet_bench.jsonl"
    done <"$WORK/cases.txt"
    # TT-SVD's step: cuSOLVER's gesvdj against the CPU's LAPACK on a 1024x1024 matrix
    run_step "fnet-bench svd" 90 "$OUT/fnet_bench.log" "$BENCH" --device "$BENCH_DEVICE" \
        --svd 1024 --repeat 5 --json "$WORK/fnet_svd.jsonl"
    [ -f "$WORK/fnet_svd.jsonl" ] && cat "$WORK/fnet_svd.jsonl" >>"$OUT/fnet_bench.jsonl"
fi

# --- f. the summary ---------------------------------------------------------------------------
S=$OUT/summary.txt
{
    echo "factornet device check, $GIT_REV: GPU $GPU; $(elapsed) s of ${BUDGET} s"
    echo "missing for the build: ${MISSING_BEFORE:-nothing}; carried .debs: $DEBS_USED"
    echo
    printf '%-34s %-46s %8s\n' "step" "status" "seconds"
    while IFS=$'\t' read -r n st secs; do printf '%-34s %-46s %8s\n' "$n" "$st" "$secs"; done \
        <"$WORK/steps.tsv"
    echo
} >"$S"

if [ -s "$OUT/ctest.log" ]; then
    {
        line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$OUT/ctest.log" | tail -1)
        if grep -q 'No tests were found' "$OUT/ctest.log"; then
            echo "ctest $CTEST_ARGS: no tests matched"
        elif [ -n "$line" ]; then
            total=$(sed -E 's/.*failed out of ([0-9]+).*/\1/' <<<"$line")
            failed=$(sed -E 's/.* ([0-9]+) tests? failed.*/\1/' <<<"$line")
            # CTest counts a test skipped (exit 77: no usable GPU) as not failed
            notrun=$(grep -cE 'Test +#[0-9]+: .*\*\*\*Skipped' "$OUT/ctest.log")
            echo "ctest $CTEST_ARGS: $((total - failed - notrun)) passed, $failed failed," \
                "$notrun skipped (no usable GPU), of $total"
            skipped=$(grep -c '\[  SKIPPED \]' "$OUT/ctest.log")
            ((skipped > 0)) && echo "  ($skipped cmocka cases skipped: see ctest.log)"
        else
            echo "ctest $CTEST_ARGS: no result line (see ctest.log)"
        fi
        if grep -q 'The following tests FAILED' "$OUT/ctest.log"; then
            sed -n '/The following tests FAILED/,$p' "$OUT/ctest.log" | head -20
            echo "  first failure messages:"
            grep -E '\[  (FAILED|ERROR) \]|error:|Assertion|Subprocess aborted|Timeout|Exception' \
                "$OUT/ctest.log" | head -20 | sed 's/^/    /'
        fi
        echo
    } >>"$S"
fi

[ -n "$WERROR_NOTE" ] && printf '%s\n\n' "$WERROR_NOTE" >>"$S"
if [ "$CAN_BUILD" = yes ] && { [ "$BUILT" != yes ] || [ -n "$WERROR_NOTE" ]; } && [ -s "$OUT/build.log" ]; then
    {
        if [ -n "$WERROR_NOTE" ]; then
            echo "the build with -Werror failed; its first errors (build.log):"
        else
            echo "the build failed; its first errors (build.log):"
        fi
        grep -E -A3 'CMake Error' "$OUT/build.log" | head -12 | cut -c1-200 | sed 's/^/  /'
        grep -E 'error|undefined reference|FAILED:' "$OUT/build.log" | grep -v 'CMake Error' |
            awk '!seen[$0]++' | head -20 | cut -c1-200 | sed 's/^/  /'
        echo
    } >>"$S"
fi

# fnet-bench --svd's rows: the backend's SVD and the CPU's, in ms, with their errors
python3 - "$OUT/fnet_bench.jsonl" >>"$S" 2>/dev/null <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"svd"' in l]
for r in rows:
    print(f"fnet-bench --svd {r['n']}: {r['backend']} ({r['host_la']}) {r['ms']:.2f} ms, "
          f"relative error {r['rel_error']:.1e}")
if rows:
    print()
PY

# what the two benchmarks said of their failures
{
    if [ -s "$OUT/torch.log" ] && [ ! -s "$OUT/torch.jsonl" ]; then
        echo "torch_bench.py wrote no result; the end of torch.log:"
        tail -n 6 "$OUT/torch.log" | cut -c1-200 | sed 's/^/  /'
        echo
    fi
    if grep -q 'error' "$OUT/fnet_bench.log" 2>/dev/null; then
        echo "fnet-bench's errors (fnet_bench.log):"
        grep 'error' "$OUT/fnet_bench.log" | awk '!seen[$0]++' | head -8 | cut -c1-200 |
            sed 's/^/  /'
        echo
    fi
} >>"$S"

# the two JSON files joined on (spec, batch) for fnet-bench and (config, mode) for PyTorch
timeout 20 "$PYTHON" - "$WORK/cases.txt" "$OUT/fnet_bench.jsonl" "$OUT/torch.jsonl" >>"$S" 2>&1 <<'EOF' ||
import json
import sys

cases = [l.split("|") for l in open(sys.argv[1]).read().splitlines() if l]


def load(path):
    rows, bad = [], 0
    try:
        for line in open(path):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    bad += 1
    except OSError:
        pass
    return rows, bad


fnet_rows, fbad = load(sys.argv[2])
torch_rows, tbad = load(sys.argv[3])
fnet = {(r.get("model"), int(r.get("batch", 0))): r for r in fnet_rows if r.get("event") == "bench"}
torch = {(r.get("config"), r.get("mode")): r for r in torch_rows if r.get("event") == "torch_bench"}


def num(v, fmt):
    return fmt % v if isinstance(v, (int, float)) else "-"


def ratio(a, b):
    return "%.2fx" % (a / b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "-"


print("samples/s of the whole training step (gather, forward, loss, backward, Adam), float32,")
print("TF32 off; fnet = fnet-bench --device cuda; eager and graph = PyTorch (torch_bench.py)")
print("%-8s %6s %12s %12s %12s %9s %9s %9s %9s" % ("config", "batch", "fnet", "eager", "graph",
      "fnet/eag", "fnet/gra", "fnet GF/s", "graph GF/s"))
sps = {}
for name, spec, batch in cases:
    f = fnet.get((spec, int(batch)), {})
    e, g = torch.get((name, "eager"), {}), torch.get((name, "graph"), {})
    fs, es, gs = f.get("samples_per_s"), e.get("samples_per_s"), g.get("samples_per_s")
    sps[name] = (fs, es, gs)
    gt = g.get("tflops")
    print("%-8s %6s %12s %12s %12s %9s %9s %9s %9s" % (
        name, batch, num(fs, "%.0f"), num(es, "%.0f"), num(gs, "%.0f"), ratio(fs, es),
        ratio(fs, gs), num(f.get("gflops"), "%.0f"),
        num(gt * 1e3 if isinstance(gt, (int, float)) else None, "%.0f")))
print("(fnet GF/s counts the GEMMs only: not the TT layer's work; graph GF/s counts every einsum)")
if "tt" in sps and "wide256" in sps:
    t, d = sps["tt"], sps["wide256"]
    print("tt over the dense wide network at batch 256: fnet %s, eager %s, graph %s" % (
        ratio(t[0], d[0]), ratio(t[1], d[1]), ratio(t[2], d[2])))
for (name, mode), r in sorted(torch.items()):
    if "error" in r:
        print("torch %s %s failed: %s" % (name, mode, r["error"][:300]))
for r in torch_rows:
    if r.get("event") == "svd":
        if "error" in r:
            print("svd 1024x1024 (%s): failed: %s" % (r.get("driver"), r["error"][:200]))
        else:
            print("svd 1024x1024 float32, torch.linalg.svd driver %-8s %8.2f ms" % (r.get("driver"), r["ms"]))
    elif r.get("event") == "sgemm":
        print("sgemm %d^3 float32 (torch.matmul): %.2f TFLOP/s; float32 matmul error %.1e (TF32 %s)"
              % (r.get("n", 0), r["tflops"], r.get("matmul_rel_err", float("nan")),
                 "ON" if r.get("tf32") else "off"))
dev = next((r.get("device") for r in torch_rows if r.get("device")), None)
if dev:
    print("PyTorch %s (CUDA %s) on %s" % (torch_rows[0].get("torch"), torch_rows[0].get("cuda"), dev))
missing = [n for n, s, b in cases if (s, int(b)) not in fnet]
if missing:
    print("no fnet-bench result for: %s (fnet_bench.log)" % ", ".join(missing))
if fbad or tbad:
    print("unreadable JSON lines: fnet_bench.jsonl %d, torch.jsonl %d" % (fbad, tbad))
EOF
    echo "(the JSON join failed: see fnet_bench.jsonl and torch.jsonl)" >>"$S"

FAILED=$(awk -F'\t' '$2 != "ok"' "$WORK/steps.tsv" | wc -l)
echo >>"$S"
echo "$FAILED of $(wc -l <"$WORK/steps.tsv") steps not ok; logs: $(cd "$OUT" && printf '%s ' *)" >>"$S"
echo
echo "================================ summary ================================"
cat "$S"
[ "$FAILED" -eq 0 ]

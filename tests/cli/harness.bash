# The harness of the command-line tests (tests/cli/test_*.sh), sourced by each: one line per
# check ("ok N - what"), the first failure stops the script with what was seen. The sourcing
# script calls cli_setup first, which sets PROG (the binary's name, as in its messages),
# PROG_PATH, BIN_DIR, MKIDX and WORK, and moves into WORK, a temporary directory of its own.
# shellcheck shell=bash

n=0

# cli_setup PROG BIN_DIR MKIDX: the script's arguments (the build's bin/ directory, the
# fnet-mkidx generator of tests/cli/mkidx.c) made absolute, both checked, and a temporary work
# directory, removed on exit; FNET_DATA unset.
cli_setup() {
    PROG=$1
    BIN_DIR=${2:?usage: ${0##*/} BIN_DIR MKIDX}
    MKIDX=${3:?usage: ${0##*/} BIN_DIR MKIDX}
    case $BIN_DIR in /*) ;; *) BIN_DIR=$PWD/$BIN_DIR ;; esac
    case $MKIDX in /*) ;; *) MKIDX=$PWD/$MKIDX ;; esac
    PROG_PATH=$BIN_DIR/$PROG
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$PROG-test.XXXXXX") || exit 1
    trap 'rm -rf "$WORK"' EXIT
    cd "$WORK" || exit 1
    unset FNET_DATA
    [ -x "$PROG_PATH" ] || fail "setup: $PROG_PATH is not an executable" "$(ls -l "$BIN_DIR" 2>&1)"
    [ -x "$MKIDX" ] || fail "setup: $MKIDX is not an executable" "$(ls -l "$MKIDX" 2>&1)"
}
# ok WHAT: one line per passed check.
ok() {
    n=$((n + 1))
    printf 'ok %2d - %s\n' "$n" "$1"
}

# fail WHAT SEEN...: say which check failed and what was seen, then stop.
fail() {
    printf 'FAIL %2d - %s\n' "$((n + 1))" "$1"
    shift
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/    /'
    done
    exit 1
}

# show FILE: its first lines, indented, for a failure message.
show() {
    if [ -s "$1" ]; then
        head -n 20 "$1" | sed 's/^/  | /'
    else
        echo "  | (empty)"
    fi
}

# run NAME ARGS...: run $PROG with stdout in NAME.out, stderr in NAME.err; sets RC and
# LAST (= NAME). Never on a terminal: stdin is /dev/null, stdout a file.
run() {
    LAST=$1
    shift
    "$PROG_PATH" "$@" </dev/null >"$LAST.out" 2>"$LAST.err"
    RC=$?
}

# seen: what the last run did, for a failure message.
seen() {
    echo "exit code $RC; stderr:"
    show "$LAST.err"
    echo "stdout:"
    show "$LAST.out"
}

# no_sanitizer WHAT: nothing from ASan, UBSan or LeakSanitizer on the last run's stderr.
no_sanitizer() {
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' "$LAST.err"; then
        fail "$1: sanitizer report on stderr" "$(seen)"
    fi
}

# good WHAT: the last run succeeded, quietly.
good() {
    no_sanitizer "$1"
    [ "$RC" -eq 0 ] || fail "$1: expected exit 0" "$(seen)"
    if grep -q 'error' "$LAST.err"; then
        fail "$1: exit 0 but an error on stderr" "$(seen)"
    fi
}

# meaning CODES: what an expected exit status stands for (docs/design.md).
meaning() {
    case $1 in
    1) echo "a runtime error" ;;
    2) echo "bad usage" ;;
    *) echo "bad usage or a runtime error" ;;
    esac
}

# bad CODES KEYWORD WHAT ARGS...: $PROG ARGS must exit with one of CODES ("1", "2" or
# "1|2"), print exactly one line "$PROG: error: <what> (<where>)" on stderr that contains
# KEYWORD (an extended regex, case-insensitive), and nothing from a sanitizer.
bad() {
    local codes=$1 keyword=$2 what=$3
    shift 3
    run bad "$@"
    no_sanitizer "$what"
    if ! [[ "$RC" =~ ^($codes)$ ]]; then
        fail "$what: expected exit $codes ($(meaning "$codes")), got $RC" \
            "command: $PROG $*" "$(seen)"
    fi
    local lines
    lines=$(awk 'END { print NR }' bad.err)
    [ "$lines" -eq 1 ] || fail "$what: expected exactly one line on stderr, got $lines" \
        "command: $PROG $*" "$(seen)"
    grep -q "^$PROG: error: " bad.err || fail "$what: stderr does not start with '$PROG: error: '" \
        "command: $PROG $*" "$(seen)"
    grep -q ')$' bad.err || fail "$what: the error line does not end with '(<where>)'" \
        "command: $PROG $*" "$(seen)"
    grep -qiE -- "$keyword" bad.err || fail "$what: the error does not mention /$keyword/" \
        "command: $PROG $*" "$(seen)"
    # the user's words only: the library's source location belongs to its log
    if grep -qE '[A-Za-z_]+\.c:[0-9]+' bad.err; then
        fail "$what: the error carries a source location" "command: $PROG $*" "$(seen)"
    fi
    ok "$what: exit $RC, one line naming /$keyword/"
}

# json_field LINE KEY: the raw value of KEY in a one-line JSON object (numbers, null).
json_field() {
    printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p"
}


# fnet_train NAME ARGS...: as run, with fnet-train (the scripts of the other binaries make their
# checkpoints with it and read back what they wrote).
fnet_train() {
    LAST=$1
    shift
    "$BIN_DIR/fnet-train" "$@" </dev/null >"$LAST.out" 2>"$LAST.err"
    RC=$?
}

# reload NAME CKPT [ARGS...]: fnet-train --data data --load CKPT --epochs 0 ARGS; sets FINAL,
# its JSON "final" line.
reload() {
    local name=$1 ckpt=$2
    shift 2
    fnet_train "$name" --data data --load "$ckpt" --epochs 0 --threads 2 --json "$name.json" "$@"
    good "fnet-train --load $ckpt --epochs 0 $*"
    FINAL=$(tail -n 1 "$name.json")
    printf '%s\n' "$FINAL" | grep -q '"event":"final"' ||
        fail "fnet-train --load $ckpt: no final JSON line" "$(show "$name.json")"
}

# final_field FILE KEY: KEY of the last line (the "final" object) of a JSON-lines file.
final_field() {
    json_field "$(tail -n 1 "$1")" "$2"
}

# unchanged FILE REF WHAT: FILE is byte-identical to REF.
unchanged() {
    cmp -s "$1" "$2" || fail "$3: $1 changed (cmp against the copy taken before)" \
        "$(cmp "$1" "$2" 2>&1)" "$(ls -l "$1" "$2" 2>&1)"
}

# no_litter WHAT: no temporary checkpoint file left behind in the work directory.
no_litter() {
    local left
    left=$(find . -name '*.tmp*' 2>/dev/null)
    [ -z "$left" ] || fail "$1: temporary files left behind" "$left"
}

# data_of FILE: the tensor data of a safetensors file (all after its header), on stdout.
data_of() {
    local n
    n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    tail -c +$((9 + n)) "$1"
}

# interrupted SIG WAIT WHAT ARGS...: $PROG ARGS in the background; once its stdout matches WAIT
# (an extended regex) it is stopped, sent SIG (INT or TERM) and let go on, so the signal lands
# in the work that followed WAIT; it must exit 128 + the signal's number and say
# "$PROG: interrupted by SIG<SIG>: " on stderr. Sets RC and LAST (= interrupted). WAIT must be
# output printed once the program's handler is in place (training has begun): a background job
# of a script starts with SIGINT ignored, so a SIGINT before that would be lost.
interrupted() {
    local sig=$1 wait_for=$2 what=$3 tries=0 pid code
    shift 3
    LAST=interrupted
    "$PROG_PATH" "$@" </dev/null >interrupted.out 2>interrupted.err &
    pid=$!
    while ! grep -qE "$wait_for" interrupted.out 2>/dev/null && kill -0 "$pid" 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -lt 3000 ] || fail "$what: waited 30 s for /$wait_for/" "$(show interrupted.out)"
        sleep 0.01
    done
    kill -STOP "$pid" 2>/dev/null
    kill "-$sig" "$pid" 2>/dev/null
    kill -CONT "$pid" 2>/dev/null
    reap "$pid" "$what"
    no_sanitizer "$what"
    code=$([ "$sig" = TERM ] && echo 143 || echo 130)
    [ "$RC" -eq "$code" ] && grep -q "^$PROG: interrupted by SIG$sig: " interrupted.err ||
        fail "$what: expected exit $code and 'interrupted by SIG$sig'" "$(seen)"
    ok "$what: SIG$sig stops it cleanly, exit $code"
}

# reap PID WHAT: wait for a signalled background process, at most 120 s (one that ignored the
# signal is killed and the check fails, rather than hanging the suite); sets RC.
reap() {
    local tries=0
    while kill -0 "$1" 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 12000 ]; then
            kill -KILL "$1" 2>/dev/null
            wait "$1" 2>/dev/null
            fail "$2: still running 120 s after the signal" "$(seen)"
        fi
        sleep 0.01
    done
    wait "$1"
    RC=$?
}

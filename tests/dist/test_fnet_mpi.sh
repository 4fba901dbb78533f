#!/usr/bin/env bash
# shellcheck disable=SC2015  # "A && B || fail" is meant: fail when either is false
# The binaries under mpirun (docs/distributed.md): a job of 2 ranks trains like one process
# (the same test accuracy from its checkpoint, loaded by one process), rank 0 alone prints and
# writes the files, L-BFGS and fnet-optim run in a job, and a rank that dies ends every rank
# with the launcher's message naming it, a non-zero exit and the last checkpoint whole.
# Registered by tests/CMakeLists.txt where the build has MPI (label mpi).
#
# usage: test_fnet_mpi.sh BIN_DIR MKIDX MPIEXEC
set -u
# shellcheck source=../cli/harness.bash
. "$(dirname "$0")/../cli/harness.bash"
MPIEXEC=${3:?usage: test_fnet_mpi.sh BIN_DIR MKIDX MPIEXEC}
cli_setup fnet-train "$1" "$2"
# Open MPI refuses root unless told; 2 ranks on a machine of fewer cores
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
MODEL=dense:48,relu,tt:32:rank=3,relu,dense:5
COMMON=(--data data --batch 64 --seed 4 --epochs 3)

"$MKIDX" --train 3000 --side 12 data >mkidx.log 2>&1 || fail "setup: fnet-mkidx" "$(cat mkidx.log)"

# mpirun NAME PROG ARGS...: 2 ranks of PROG, stdout in NAME.out, stderr in NAME.err; sets RC.
mpirun2() {
    LAST=$1
    local prog=$2
    shift 2
    timeout 300 "$MPIEXEC" -n 2 "$BIN_DIR/$prog" "$@" </dev/null >"$LAST.out" 2>"$LAST.err"
    RC=$?
}

# 1. A job of 2 ranks: one header, one line per epoch, one JSON file with one final record
mpirun2 job fnet-train --model "$MODEL" "${COMMON[@]}" --save job.safetensors --json job.json
[ "$RC" -eq 0 ] || fail "mpirun -n 2 fnet-train exits 0" "rc $RC" "$(show job.err)"
grep -q '1 threads each, 2 ranks' job.out && ok "the header names the 2 ranks" ||
    fail "the header names the ranks" "$(show job.out)"
[ "$(grep -c '^ *epoch ' job.out)" -eq 3 ] && ok "rank 0 alone prints the epochs" ||
    fail "3 epoch lines, from rank 0 alone" "$(show job.out)"
[ "$(grep -c '"event":"final"' job.json)" -eq 1 ] && ok "rank 0 alone writes the JSON" ||
    fail "one final JSON record" "$(show job.json)"
acc=$(sed -n 's/.*test_acc \([0-9.]*\).*/\1/p' job.out)
[ -n "$acc" ] || fail "the job prints its test accuracy" "$(show job.out)"

# 2. Its checkpoint, loaded by one process, gives the same test accuracy
run alone --load job.safetensors --data data --epochs 0
[ "$RC" -eq 0 ] || fail "one process loads the job's checkpoint" "$(seen)"
acc1=$(sed -n 's/.*test_acc \([0-9.]*\).*/\1/p' alone.out)
[ "$acc1" = "$acc" ] && ok "the job's checkpoint loads alone: test_acc $acc1 = $acc" ||
    fail "the same test accuracy from the checkpoint alone" "job $acc, alone $acc1"

# 3. The same run in one process ends within rounding of the job (test accuracy within 1%)
run one --model "$MODEL" "${COMMON[@]}" --threads 1
awk -v a="$acc" -v b="$(sed -n 's/.*test_acc \([0-9.]*\).*/\1/p' one.out)" \
    'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }' && ok "one process ends where the job does" ||
    fail "one process and the job end alike" "job $acc" "$(show one.out)"

# 4. L-BFGS in a job (its oracle all-reduces), and fnet-optim's own loops
mpirun2 lbfgs fnet-train --model dense:16,relu,dense:5 --data data --optim lbfgs --batch 1000 \
    --epochs 2 --seed 4
[ "$RC" -eq 0 ] && grep -q 'test_acc' lbfgs.out && ok "L-BFGS runs in a job" ||
    fail "mpirun -n 2 fnet-train --optim lbfgs" "rc $RC" "$(show lbfgs.err)" "$(show lbfgs.out)"
# (evaluations every 3 ms of training: the ranks must agree on when, by rank 0's clock)
mpirun2 optim fnet-optim --network seed --data data --optims adam,sgd,lbfgs \
    --seconds 0.3 --eval-every 0.003 --json optim.json
[ "$RC" -eq 0 ] && [ "$(grep -c '"event":"final"' optim.json)" -eq 3 ] &&
    ok "fnet-optim runs in a job, rank 0 writing its JSON" ||
    fail "mpirun -n 2 fnet-optim" "rc $RC" "$(show optim.err)" "$(show optim.json)"

# 5. RigL in a job: its dense gradient probe is all-reduced like the gradient
mpirun2 rigl fnet-train --model sparse:64:density=0.3,relu,dense:5 --data data \
    --sparse-update rigl --epochs 2 --batch 64
[ "$RC" -eq 0 ] && grep -q 'test_acc' rigl.out && ok "RigL runs in a job" ||
    fail "mpirun -n 2 fnet-train --sparse-update rigl" "rc $RC" "$(show rigl.err)"

# 6. SIGINT to one rank only: every rank stops at the same step and exits 130, rank 0 says how
# to resume, and the resume finishes the run
timeout 300 "$MPIEXEC" -n 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then
        (while [ ! -s int.safetensors ]; do sleep 0.05; done; kill -INT $$) &
    fi
    exec "$0" "$@"' "$PROG_PATH" --model dense:256,relu,dense:5 --data data --batch 16 \
    --epochs 1000 --save int.safetensors --save-every-seconds 0.1 </dev/null >int.out 2>int.err
RC=$?
[ "$RC" -eq 130 ] && grep -q 'resume with: fnet-train --resume int.safetensors' int.err &&
    ok "SIGINT to rank 1 alone: exit 130 and the resume hint" ||
    fail "SIGINT to one rank ends the job as an interruption" "rc $RC" "$(show int.err)"
[ "$(grep -c 'interrupted by SIGINT' int.err)" -eq 1 ] && ok "rank 0 alone says so" ||
    fail "one 'interrupted' line" "$(show int.err)"
# to the end of the epoch it stopped in ("in epoch E of 1000 after step S", or "after epoch E")
e=$(sed -n 's/.*in epoch \([0-9]*\) of 1000.*/\1/p; s/.*after epoch \([0-9]*\) of 1000.*/\1/p' \
    int.err | head -n 1)
[ -n "$e" ] || fail "the interruption says where it stopped" "$(show int.err)"
mpirun2 resumed fnet-train --model dense:256,relu,dense:5 --data data --batch 16 \
    --epochs $((e + 1)) --resume int.safetensors
[ "$RC" -eq 0 ] && grep -q 'test_acc' resumed.out && ok "the job resumes it" ||
    fail "mpirun -n 2 fnet-train --resume" "rc $RC" "$(show resumed.err)"

# 7. A rank that dies: every rank ends, the launcher names it, the exit is non-zero, and the
# checkpoint written before is whole (it loads) with no temporary file beside it
mkdir dead
timeout 300 "$MPIEXEC" -n 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then
        (while [ ! -s dead/ck.safetensors ]; do sleep 0.1; done; sleep 0.5; kill -9 $$) &
    fi
    exec "$0" "$@"' "$PROG_PATH" --model dense:256,relu,dense:5 --data data --batch 16 \
    --epochs 1000 --save dead/ck.safetensors --save-every-seconds 0.2 \
    </dev/null >dead.out 2>dead.err
RC=$?
[ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && ok "a dead rank ends the job: exit $RC" ||
    fail "a dead rank ends every rank with a non-zero exit (124: it hung)" "rc $RC" "$(show dead.err)"
grep -q 'rank 1' dead.err && grep -qi 'signal 9\|killed' dead.err &&
    ok "the launcher's message names the dead rank" || fail "a message naming rank 1" "$(show dead.err)"
run deadload --load dead/ck.safetensors --data data --epochs 0
[ "$RC" -eq 0 ] && ok "the last checkpoint is whole" || fail "the last checkpoint loads" "$(seen)"
[ "$(find dead -name '*.tmp*' | wc -l)" -eq 0 ] && ok "no half-written checkpoint is left" ||
    fail "no temporary file left" "$(ls -la dead)"

#!/usr/bin/env bash
# The core knows no layer kind (docs/design.md, "Layer kinds"): src/core and src/io never switch
# on a kind, src/core includes no header of a layer family's folder, FNET_WITH_CUDA appears only
# in the backend registry and src/gpu, MPI only in src/dist and NCCL only in src/gpu. (That backend memory is touched by backend ops only is
# checked at run time, by the guarded backend.)
# Usage: check_layering.sh SOURCE_DIR
set -u
src=${1:?usage: check_layering.sh SOURCE_DIR}/src
status=0
if grep -rn 'case FNET_LAYER_' "$src/core" "$src/io"; then
    echo "FAIL: src/core or src/io switches on a layer kind (above)"
    status=1
fi
if grep -rnE '#include "(tn|dense|lowrank|circulant|sparse)/' "$src/core"; then
    echo "FAIL: src/core includes a header of a layer family (above)"
    status=1
fi
if grep -rn 'FNET_WITH_CUDA' "$src" | grep -v "^$src/core/ctx.c:" | grep -v "^$src/gpu/"; then
    echo "FAIL: FNET_WITH_CUDA outside the backend registry and src/gpu (above)"
    status=1
fi
# MPI belongs to src/dist, NCCL (CUDA code) to src/gpu
if grep -rnE 'FNET_WITH_MPI|include <mpi\.h>' "$src" | grep -v "^$src/dist/"; then
    echo "FAIL: MPI outside src/dist (above)"
    status=1
fi
if grep -rnE 'FNET_WITH_NCCL|include <nccl\.h>' "$src" | grep -v "^$src/gpu/"; then
    echo "FAIL: NCCL outside src/gpu (above)"
    status=1
fi
[ "$status" -eq 0 ] && echo "ok: no kind switch in src/core or src/io, no family header in src/core"
exit "$status"

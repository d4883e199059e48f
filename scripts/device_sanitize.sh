#!/bin/bash
# scripts/device_sanitize.sh [TOOL...]: one call on the lent GPU machine
# (the device tool), from the repository root: NVIDIA's compute-sanitizer
# over the CUDA backend, the GPU's counterpart of the ASan/UBSan run that
# `scripts/run.sh test` gives the host code.  TOOL is memcheck (out of
# bounds and misaligned accesses, device-side leaks), racecheck (shared
# memory hazards), synccheck (barriers used wrongly) or initcheck (reads
# of global memory never written); all four by default.
#
# Each tool runs, as processes of their own, all at once: the benchmark's
# three kinds of forward at small sizes (128-key blocks on the short-block
# kernels, 512-key blocks on k_wgmma_kv_ws, 4096-key blocks with the own
# blocks on k_wgmma_own_ws), and the conformance program (memcheck: every
# test; the slower tools: MOBA_TEST_FILTER, default "test_shapes_*").  A
# run that finds anything exits 9 (--error-exitcode); one cut by its time
# limit (LIMIT seconds, default 420) says so.  BUILD (default
# build-sanitize) is reused when it holds the CUDA module.  Carry .devdeps;
# logs go to $OUT.  Exits 0 only when every run was clean.
set -u
source "$(dirname "$0")/device_env.sh" || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || exit 77
b=${BUILD:-build-sanitize}
if [ -f "$b/backends/cuda/libmoba-cuda.so" ]; then
    export MOBA_CACHE_DIR=/tmp/moba-cache MOBA_PLUGIN_DIR=$PWD/$b/backends/cuda
else
    device_cuda_only "$b" || exit 1
fi
cs=$(command -v compute-sanitizer ||
     ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
        2>/dev/null | head -1)
[ -n "$cs" ] || { echo "no compute-sanitizer on this machine"; exit 1; }
"$cs" --version | tail -1
tools=${*:-memcheck racecheck synccheck initcheck}
limit=${LIMIT:-420}
bench="$b/tools/moba-bench --backend cuda --q-heads 4 --head-dim 128 --dtype bf16 --no-dense
       --warmup 0 --iters 1"
s=$(date +%s)
run() { # NAME FILTER ARGS...: tool $t on one process in the background, its log and status in $OUT
    local extra=
    [ "$t" = memcheck ] && extra="--leak-check full"
    (MOBA_TEST_FILTER=$2 timeout "$limit" "$cs" --tool "$t" $extra --error-exitcode 9 \
         --print-limit 40 "${@:3}" > "$OUT/san-$t-$1.log" 2>&1
     echo $? > "$OUT/san-$t-$1.rc") &
}
for t in $tools; do
    run blk128 "" $bench --seqlen 8192 --batch 1 --block-size 128 --top-k 8
    run blk512 "" $bench --seqlen 8192 --batch 1 --block-size 512 --top-k 3
    run blk4096 "" $bench --seqlen 32768 --batch 1 --block-size 4096 --top-k 3
    filter=${MOBA_TEST_FILTER:-test_shapes_*}
    [ "$t" = memcheck ] && filter=${MOBA_TEST_FILTER:-}
    run conformance "$filter" "$b/tests/conformance" cuda tests/vectors
done
wait
echo "all runs done in $(( $(date +%s) - s )) s"
bad=0
for t in $tools; do
    for n in blk128 blk512 blk4096 conformance; do
        f=$OUT/san-$t-$n
        rc=$(cat "$f.rc")
        case $rc in
        0) what=clean ;; 9) what="FOUND ERRORS" ;; 77) what=skipped ;; 124) what="cut at ${limit} s" ;;
        *) what="failed" ;;
        esac
        [ "$rc" = 0 ] || bad=1
        printf '%-10s %-12s rc=%-3s %-14s %s\n' "$t" "$n" "$rc" "$what" \
            "$(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED' "$f.log" | tr '\n' ' ' | cut -c1-120)"
    done
done
exit $bad

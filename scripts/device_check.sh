#!/bin/bash
# One call on the lent GPU machine (the device tool), from the repository
# root: build every backend with the tests, run the conformance suite on the
# GPU (CUDA on every kernel path, OpenCL through NVIDIA's driver, the CPU
# variants on the host), the golden vectors, and a short benchmark against
# PyTorch.  Carry .devdeps (cmocka, OpenCL loader) and .whl (meson, if the
# machine lacks it).  Logs go to $OUT.
set -u
source "$(dirname "$0")/device_env.sh" || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
b=build-device
device_build "$PWD" "$PWD/$b" -Dcuda=enabled -Dopencl=enabled -Dhip=disabled -Dgpu_archs=90a ||
    exit 1
export MOBA_CACHE_DIR=/tmp/moba-cache
# NVIDIA's OpenCL for everything below, conformance-opencl included: where
# PoCL is installed too its platform may be listed first (opencl:0).
export MOBA_OPENCL_PLATFORM=nvidia
# The modules of this build, for moba-info and every tool below (the
# conformance tests set their own).
export MOBA_PLUGIN_DIR=$PWD/$b/backends/cuda:$PWD/$b/backends/opencl
./$b/tools/moba-info | head -40
s=$(date +%s)
timeout 240 meson test -C $b --suite conformance --suite unit --num-processes 8 --print-errorlogs > "$OUT/test.log" 2>&1
echo "meson test rc=$? in $(( $(date +%s) - s )) s"; grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test.log"
grep -hE '^backend opencl device' "$b/meson-logs/testlog.txt" | head -1
MOBA_CUDA_KERNEL=simt timeout 120 meson test -C $b conformance-cuda --print-errorlogs > "$OUT/test-simt.log" 2>&1
echo "conformance-cuda with MOBA_CUDA_KERNEL=simt rc=$?"; grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test-simt.log"
# The mma.sync kernels, two CTAs per persistent kernel (each runs many
# tiles, and the long-block kernel many tile pairs through one ring), and
# the lists' fill per row (k_fill), in spans of 64 tiles (spans across
# sequences), from the cursors (no list counted in shared memory) and
# unstaged (each entry stored where it goes), every own block on
# k_wgmma_own_ws, then none, k_mma_own without its early slot, the
# key-centric lists taken block-major, k_wgmma_kv_short's runs a tile
# each (every run started from runs), one run a CTA (chunk 0), runs of
# 3 tiles (lists of more cut, shorter ones taken whole past the chunk's
# end) and of 64 tiles (what shapes whose Q is larger than the L2 get;
# the suite's small shapes get 16), three head groups (each group's
# part of the lists and of runs), and the key-centric work of every block
# on k_wgmma_kv_ws, then of blocks below 4096 keys on the other kernels.
# All at once, each its own process (run one after the other they
# took ~6 of a call's 10 minutes); logs named with _ for = (the device
# tool returns no name with =).
for v in MOBA_CUDA_KERNEL=mma MOBA_CUDA_GRID=2 MOBA_CUDA_FILL_SPAN=0 MOBA_CUDA_FILL_SPAN=64 \
    MOBA_CUDA_FILL_CAP=0 MOBA_CUDA_FILL_STAGE=0 MOBA_CUDA_OWN_WS=1 MOBA_CUDA_OWN_WS=0 \
    MOBA_CUDA_OWN_EARLY=0 MOBA_CUDA_TILE_ORDER=0 MOBA_CUDA_SCHED_CHUNK=1 MOBA_CUDA_SCHED_CHUNK=64 \
    MOBA_CUDA_SCHED_CHUNK=0 MOBA_CUDA_SCHED_CHUNK=3 \
    MOBA_CUDA_HEAD_GROUPS=3 MOBA_CUDA_WS_MIN=1 MOBA_CUDA_WS_MIN=4096; do
    n=${v#MOBA_CUDA_}; n=${n//[^A-Za-z0-9]/_}
    (env "$v" timeout 240 ./$b/tests/conformance cuda tests/vectors > "$OUT/test-$n.log" 2>&1
     echo "conformance-cuda with $v rc=$?" > "$OUT/rc-$n.txt") &
done
wait
for f in "$OUT"/rc-*.txt; do
    cat "$f"; n=${f##*/rc-}; grep -E 'PASSED|FAILED' "$OUT/test-${n%.txt}.log" | head -3
done
grep -hE 'FAILED|\[ *FAILED|max\|' "$OUT/test.log" | head -20
for g in g1 g4; do
    for be in cuda opencl; do
        ./$b/tools/moba-run --backend $be --out /tmp/o.npy tests/vectors/$g &&
        python3 -c "import numpy as n; a=n.load('/tmp/o.npy'); r=n.load('tests/vectors/$g/o.npy'); print('golden $g $be max|err| %.3g' % abs(a-r).max())"
    done
done
# libmoba's GPU backends against each other, same shapes, same process order.
# (MOBA_OPENCL_PLATFORM=nvidia above: a 128K run on PoCL outlasts the timeout.)
for be in cuda opencl; do
    timeout 120 ./$b/tools/moba-bench --quiet --backend $be --seqlen 131072 --batch 2 --q-heads 16 \
        --head-dim 128 --block-size 128 --top-k 8 --dtype f32,bf16 --no-dense --warmup 1 --iters 3 \
        2>&1 | tee -a "$OUT/backends.log" | grep -E 'bf16|f32|backend'
done
# Torch baselines and libmoba (each CUDA kernel path named by --kernels) in
# one process; pass e.g. --lens 32k,128k --blocks 128x8 --kernels mma,simt.
echo "== bench_vs_torch $*"
PYTHONUNBUFFERED=1 timeout 300 python3 tools/bench_vs_torch.py --lib $b/libmoba.so "$@" 2>&1 \
    | tee "$OUT/bench.log" | grep -v Warning

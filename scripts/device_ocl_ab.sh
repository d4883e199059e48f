#!/bin/bash
# Same-machine A/B of the OpenCL backend on NVIDIA's OpenCL, in one call on
# the lent GPU machine (the device tool): this tree against the revisions
# in .ab-base/ (made here by `bash scripts/device_ab.sh prepare REV...`).
#
#   device: bash scripts/device_ocl_ab.sh   carry [".devdeps", ".whl", ".ab-base"]
#
# Runs conformance-opencl and unit-core on this tree with
# MOBA_OPENCL_PLATFORM=nvidia (the log names the device it ran on: PoCL is
# also installed there and is listed first), then moba-bench (gate + attend
# and the gate alone, f32 and bf16 storage, B=2 Hq=Hk=16 D=128 blk128/top8)
# for every tree, alternated twice.  Environment:
#   LENS="131072"            sequence lengths
#   VARIANTS="A=x B=y,z+C=w ..." this tree again under each environment
#                            setting ('+' joins two in one variant),
#                            e.g. MOBA_OPENCL_ATTEND=NT,QT,KT,UQK,UPV or
#                            MOBA_OPENCL_GATE=GNT,GR,CB (docs/opencl.md)
#   CUDA=1                   also build this tree's CUDA backend and time it
#   CUDNN=1                  also time PyTorch cuDNN dense bf16
# and moba-ocl-peak (the f32 ceiling: FMA chains, CLBlast SGEMM).  Logs go
# to $OUT, with the program binaries of the disk cache (PTX on NVIDIA) in
# ocl-cache.tgz, for `ptxas -v` here.
set -u
source "$(dirname "$0")/device_env.sh" || exit 1
export MOBA_OPENCL_PLATFORM=nvidia MOBA_CACHE_DIR=/tmp/moba-cache
here=$PWD
bases=$(ls -d .ab-base/[0-9]*-* 2>/dev/null | sort -t/ -k2 -n)
trees=
for d in $bases; do
    trees="$trees ${d#.ab-base/}=$here/$d"
    echo "base ${d#.ab-base/}: $(cat "$d/REVISION")"
done
trees="$trees new=$here"
for t in $trees; do
    cu=disabled
    [ "${t%%=*}" = new ] && [ -n "${CUDA:-}" ] && cu=enabled
    device_build "${t#*=}" "$here/build-ocl-${t%%=*}" -Dcuda=$cu -Dopencl=enabled \
        -Dhip=disabled -Dgpu_archs=90a || exit 1
done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || exit 77
b=$here/build-ocl-new
MOBA_PLUGIN_DIR=$b/backends/opencl timeout 240 meson test -C "$b" conformance-opencl unit-core \
    --print-errorlogs > "$OUT/test-ocl.log" 2>&1
echo "conformance-opencl + unit-core rc=$? (NVIDIA)"
grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test-ocl.log"
grep -hE '^backend opencl device' "$b/meson-logs/testlog.txt" | head -1
grep -hE 'FAILED' "$b/meson-logs/testlog.txt" | head -20
bench() { # tree backend [env]
    local e=${3:-}
    env MOBA_PLUGIN_DIR="$here/build-ocl-$1/backends/opencl:$here/build-ocl-$1/backends/cuda" ${e//+/ } \
        timeout 240 "$here/build-ocl-$1/tools/moba-bench" --quiet --backend "$2" \
        --seqlen "${LENS:-131072}" --batch 2 --q-heads 16 --head-dim 128 --block-size 128 \
        --top-k 8 --dtype f32,bf16 --no-dense --warmup 1 --iters 3 2>&1 |
        tee -a "$OUT/bench-ocl.log" | grep -E '(f32|bf16) ' | sed "s|^|$1 $2 ${3:-} |"
}
for n in 4096 8192; do "$b/backends/opencl/moba-ocl-peak" NVIDIA $n | tee -a "$OUT/peak.log"; done
for rep in 1 2; do
    for t in $trees; do bench "${t%%=*}" opencl; done
    for s in ${VARIANTS:-}; do bench new opencl "$s"; done
done
[ -n "${CUDA:-}" ] && bench new cuda
if [ -n "${CUDNN:-}" ]; then
    MOBA_PLUGIN_DIR=$b/backends/cuda PYTHONUNBUFFERED=1 timeout 200 python3 tools/bench_vs_torch.py --lib "$b/libmoba.so" \
        --only cudnn --lens 128k --blocks 128x8 2>&1 | grep -v Warning | tee "$OUT/cudnn.log" | tail -8
fi
tar czf "$OUT/ocl-cache.tgz" -C "$MOBA_CACHE_DIR" .

#!/bin/bash
# Build + check + benchmark of the CUDA backend on the GPU machine, in one
# call (device time is scarce).  Run from the repository root there:
#   bash backends/cuda/device_run.sh [check|bench|all|mma] [bench args...]
# mma: the tensor-core path against MOBA_CUDA_KERNEL=simt in one call:
# conformance-cuda with each kernel (needs cmocka), moba-gpu-check, goldens,
# and bench_vs_torch.py at 32K/128K blk128/top8 timing both kernels.
# Logs go to $OUT (or /tmp/moba-out).
set -u
OUT=${OUT:-/tmp/moba-out}
what=${1:-all}
[ $# -gt 0 ] && shift
export PATH=/usr/local/cuda/bin:$PATH
if ! command -v meson >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/meson-*.whl || exit 1
    export PYTHONPATH=/tmp/site
    mkdir -p /tmp/bin && printf '#!/bin/sh\nexec python3 -m mesonbuild.mesonmain "$@"\n' > /tmp/bin/meson
    chmod +x /tmp/bin/meson && export PATH=/tmp/bin:$PATH
fi
nvidia-smi -L
b=build-dev
tests=false
[ "$what" = mma ] && pkg-config --exists cmocka && tests=true
[ -f $b/build.ninja ] || meson setup $b -Dhip=disabled -Dopencl=disabled -Dtests=$tests \
    -Dgpu_archs=90 > $OUT/setup.log 2>&1 || { tail -30 $OUT/setup.log; exit 1; }
meson configure $b -Dtests=$tests > /dev/null 2>&1
start=$(date +%s)
ninja -C $b > $OUT/build.log 2>&1 || { grep -v '^\[' $OUT/build.log | tail -40; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
export MOBA_PLUGIN_DIR=$PWD/$b/backends/cuda
check_s=300
if [ "$what" = mma ]; then
    if [ $tests = true ]; then
        for kern in mma simt; do
            MOBA_CUDA_KERNEL=$kern timeout 100 meson test -C $b conformance-cuda \
                --logbase conformance-$kern > $OUT/conformance-$kern.log 2>&1
            echo "conformance-cuda ($kern) rc=$?"; grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):' $OUT/conformance-$kern.log
            cp $b/meson-logs/conformance-$kern.txt $OUT/ 2>/dev/null
            grep -m 20 -E 'FAIL|\[  FAILED' $b/meson-logs/conformance-$kern.txt
        done
    else
        echo "conformance-cuda: not built (no cmocka on this machine)"
    fi
    what=all
    check_s=120 # stay inside one 10-minute device call
    [ $# -eq 0 ] && set -- --only cudnn,moba --lens 32k,128k --blocks 128x8 --kernels mma,simt
fi
if [ "$what" != bench ]; then
    timeout $check_s ./$b/backends/cuda/moba-gpu-check cuda > $OUT/check.log 2>&1
    echo "moba-gpu-check rc=$?"; grep -v '^ok' $OUT/check.log | tail -30
    for g in g1 g4; do
        ./$b/tools/moba-run --backend cuda --out $OUT/$g.npy tests/vectors/$g &&
        python3 -c "import numpy as n,sys; a=n.load('$OUT/$g.npy'); b=n.load('tests/vectors/$g/o.npy'); e=abs(a-b).max(); print('golden $g max|err| %.3g' % e, 'ok' if e <= 1e-5 + 1e-5 * abs(b).max() else 'FAIL')"
    done
fi
if [ "$what" != check ]; then
    PYTHONUNBUFFERED=1 timeout 240 python3 tools/bench_vs_torch.py --lib $b/libmoba.so "$@" 2>&1 | tee $OUT/bench.log | grep -v Warning
fi

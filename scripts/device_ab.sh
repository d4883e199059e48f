#!/bin/bash
# Same-machine A/B of the CUDA backend: this tree against an earlier
# revision, in one call on the lent GPU machine (the device tool).  Kernel
# times compare only within one machine (under ncu's locked clocks an H200
# runs the same code ~1.3x slower than an H100; docs/perf.md), so a change
# is measured against its base in the same call.
#
#   here:   bash scripts/device_ab.sh prepare REV   # REV's files into .ab-base/
#   device: bash scripts/device_ab.sh run [tools/bench_vs_torch.py args]
#           carry [".devdeps", ".whl", ".ab-base"]
#
# run builds both trees (CUDA only, sm_90a), runs conformance-cuda and
# unit-core on this tree, conformance-cuda again with MOBA_CUDA_KERNEL=wgmma
# and =simt (NOTEST=1 skips all three), then for each case of
# CASES="seqlen:batch:block:topk ..." (default: 128K blk128/top8 and 256K
# with 16384-key blocks, the paper's block size at a quarter of its
# length: a 1M point's inputs took ~90 s to make before moba-bench made
# them in parallel, and base trees older than that still do) ncu's
# per-kernel times of base and of new once per MOBA_CUDA_KERNEL value in
# NEW_KERNELS (default: "default"; e.g. "default wgmma"), and, with
# arguments, tools/bench_vs_torch.py --only moba ARGS with each library,
# alternated (base, new, base, new).  Logs go to $OUT.
set -u
cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
prepare)
    rev=${1:?usage: device_ab.sh prepare REV}
    rm -rf .ab-base && mkdir .ab-base && git archive "$rev" | tar -x -C .ab-base || exit 1
    git rev-parse "$rev" > .ab-base/REVISION
    echo "base $(cat .ab-base/REVISION) in .ab-base/ (carry it)"
    exit 0 ;;
run) ;;
*) echo "usage: device_ab.sh prepare REV | run [bench_vs_torch args]" >&2; exit 2 ;;
esac
[ -f .ab-base/REVISION ] || { echo "device_ab.sh: no .ab-base/; run 'prepare REV' first" >&2; exit 2; }
source "$(dirname "$0")/device_env.sh" || exit 1
here=$PWD
build() { # source dir, build dir (absolute)
    local r=; [ -d "$2" ] && r=--reconfigure
    (cd "$1" && meson setup $r "$2" -Dcuda=enabled -Dopencl=disabled -Dhip=disabled \
        -Dgpu_archs=90a > "$OUT/setup-$(basename "$2").log" 2>&1 &&
        ninja -C "$2" > "$OUT/build-$(basename "$2").log" 2>&1) ||
        { echo "build of $1 failed:"; tail -20 "$OUT/build-$(basename "$2").log"; return 1; }
    echo "$1: built, warnings: $(grep -c 'warning' "$OUT/build-$(basename "$2").log")"
}
build "$here" "$here/build-ab-new" || exit 1
build "$here/.ab-base" "$here/build-ab-base" || exit 1
echo "base: $(cat .ab-base/REVISION)"
if ! nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; then
    echo "device_ab.sh: no NVIDIA GPU here; the builds are all there is to do" >&2
    exit 77
fi
export MOBA_CACHE_DIR=/tmp/moba-cache
if [ -z "${NOTEST:-}" ]; then
    MOBA_PLUGIN_DIR=$here/build-ab-new/backends/cuda timeout 150 meson test -C build-ab-new \
        conformance-cuda unit-core --print-errorlogs > "$OUT/test.log" 2>&1
    echo "new: conformance-cuda + unit-core rc=$?"; grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test.log"
    for kern in wgmma simt; do
        MOBA_CUDA_KERNEL=$kern MOBA_PLUGIN_DIR=$here/build-ab-new/backends/cuda timeout 150 \
            meson test -C build-ab-new conformance-cuda --print-errorlogs > "$OUT/test-$kern.log" 2>&1
        echo "new: conformance-cuda with MOBA_CUDA_KERNEL=$kern rc=$?"
        grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test-$kern.log"
    done
fi
for c in ${CASES:-131072:2:128:8 262144:1:16384:3}; do
    IFS=: read -r sl bt bl tk <<< "$c"
    for which in base $(printf 'new:%s ' ${NEW_KERNELS:-default}); do
        kern=${which#new:} which=${which%%:*}
        [ "$which" = base ] && kern=default
        b=$here/build-ab-$which f=$OUT/ncu-$which-$kern-$sl-$bl.csv
        MOBA_CUDA_KERNEL=$kern MOBA_PLUGIN_DIR=$b/backends/cuda timeout 200 \
            ncu --metrics gpu__time_duration.sum --csv \
            "$b/tools/moba-bench" --quiet --backend cuda --seqlen "$sl" --batch "$bt" --q-heads 16 \
            --head-dim 128 --block-size "$bl" --top-k "$tk" --dtype bf16 --no-dense --warmup 0 \
            --iters 1 > "$f" 2> "${f%.csv}.err" || echo "ncu $which $kern $c failed: $(tail -2 "${f%.csv}.err")"
        python3 - "$f" "$which $kern $c" <<'PY'
import collections, csv, sys
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
ms = {'ns': 1e-6, 'nsecond': 1e-6, 'us': 1e-3, 'usecond': 1e-3, 'ms': 1.0, 'msecond': 1.0,
      's': 1e3, 'second': 1e3}
t = collections.OrderedDict()
for r in csv.DictReader(rows):
    if r.get('Metric Name') == 'gpu__time_duration.sum':
        k = r['Kernel Name'].split('<')[0].split('(')[0].replace('void ', '')
        t[k] = t.get(k, 0.0) + float(r['Metric Value'].replace(',', '')) * ms[r['Metric Unit']]
print('%-28s' % sys.argv[2], '  '.join('%s %.3f' % kv for kv in t.items()),
      ' total %.2f ms' % sum(t.values()))
PY
    done
done
if [ $# -gt 0 ]; then
    for which in base new base new; do
        echo "== $which"
        MOBA_PLUGIN_DIR=$here/build-ab-$which/backends/cuda PYTHONUNBUFFERED=1 timeout 200 \
            python3 tools/bench_vs_torch.py --lib "build-ab-$which/libmoba.so" --only moba "$@" 2>&1 |
            grep -v Warning | tee -a "$OUT/bench.log" | grep -E '^B[0-9]'
    done
fi

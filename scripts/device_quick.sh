#!/bin/bash
# The lean device call (the device tool), from the repository root; carry
# .devdeps and .whl.  Builds only the CUDA module for sm_90a (~40 s on the
# lent machine, where device_check.sh builds every backend), runs
# conformance-cuda with the default kernels and with MOBA_CUDA_GRID=2
# (every persistent CTA runs many tiles), and stops there on a failure, so
# that a broken kernel cannot hang the timings below.  Then, each optional:
#
#   CASES="seqlen:batch:block:topk ..."  ncu kernel times (ms, per kernel,
#        summed over launches) of one forward per case and MOBA_CUDA_KERNEL
#        value in KERNS (default: default); default case 262144:1:16384:3
#   E2E="default mma"  moba-bench at the paper's 1M setting, one run per
#        MOBA_CUDA_KERNEL value (E2E= for none)
#   PROF="seqlen:batch:block:topk:KERNELS:kern ..."  ncu --set full of the
#        named kernels (scripts/device_profile.sh, on this build)
#   BENCH="args"  tools/bench_vs_torch.py on this build, e.g.
#        BENCH="--only cudnn,moba --lens 128k,512k --blocks 128x8 --paper"
#
# Every step has a timeout; logs and ncu CSVs go to $OUT.
set -u
source "$(dirname "$0")/device_env.sh" || exit 1
device_cuda_only build-quick || exit $?
for g in 0 2; do
    MOBA_CUDA_GRID=$g timeout 120 meson test -C "$B" conformance-cuda --print-errorlogs \
        > "$OUT/test-grid$g.log" 2>&1
    rc=$?
    echo "conformance-cuda, MOBA_CUDA_GRID=$g: rc=$rc"
    grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test-grid$g.log"
    [ $rc = 0 ] || { grep -iE 'fail|error' "$OUT/test-grid$g.log" | head -20; exit 1; }
done
for c in ${CASES:-262144:1:16384:3}; do
    IFS=: read -r sl bt bl tk <<< "$c"
    for kern in ${KERNS:-default}; do
        f=$OUT/ncu-$kern-$sl-$bl.csv
        MOBA_CUDA_KERNEL=$kern timeout 150 ncu --metrics gpu__time_duration.sum --csv \
            "$B/tools/moba-bench" --quiet --backend cuda --seqlen "$sl" --batch "$bt" \
            --q-heads 16 --head-dim 128 --block-size "$bl" --top-k "$tk" --dtype bf16 \
            --no-dense --warmup 0 --iters 1 --no-gate-ms > "$f" 2> "${f%.csv}.err" ||
            { echo "ncu $kern $c failed: $(tail -2 "${f%.csv}.err")"; continue; }
        python3 - "$f" "$kern $c" <<'PY'
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
for kern in ${E2E-default mma}; do
    echo "== moba-bench 1M, MOBA_CUDA_KERNEL=$kern"
    MOBA_CUDA_KERNEL=$kern timeout 120 "$B/tools/moba-bench" --backend cuda --seqlen 1048576 \
        --batch 1 --q-heads 16 --head-dim 128 --block-size 16384 --top-k 3 --dtype bf16 \
        --no-dense --iters 3 2>&1 | tail -2
done
if [ -n "${PROF:-}" ]; then
    PROF_BUILD=build-quick PROFILE="$PROF" timeout 300 bash scripts/device_profile.sh
fi
if [ -n "${BENCH:-}" ]; then
    echo "== bench_vs_torch $BENCH"
    PYTHONUNBUFFERED=1 timeout 330 python3 tools/bench_vs_torch.py --lib "$B/libmoba.so" $BENCH \
        2>&1 | tee "$OUT/bench.log" | grep -v Warning | tail -25
fi

#!/bin/bash
# Same-machine A/B of the CUDA backend: this tree against one or more
# earlier revisions, in one call on the lent GPU machine (the device tool).
# Kernel times compare only within one machine (under ncu's locked clocks
# an H200 runs the same code ~1.3x slower than an H100; docs/perf.md), so a
# change is measured against its bases in the same call.
#
#   here:   bash scripts/device_ab.sh prepare REV...  # each REV into .ab-base/
#   device: bash scripts/device_ab.sh run [tools/bench_vs_torch.py args]
#           carry [".devdeps", ".whl", ".ab-base"]
#
# run builds every tree (CUDA only, sm_90a), runs conformance-cuda and
# unit-core on this tree and on every base but the first (the first REV is
# the reference, taken as already checked), conformance-cuda again with
# MOBA_CUDA_KERNEL=mma and =simt and with MOBA_CUDA_GRID=2
# (NOTEST=1 skips all of it; NOTEST=bases tests this tree only, with the
# default kernels and MOBA_CUDA_GRID=2: the lean form for variants that
# are only measured; NOTEST=lean does that for every tree but the first,
# for several untested variants in one call; TEST_ENVS="VAR=VALUE ..."
# adds a conformance-cuda run per assignment on every tree tested, e.g.
# MOBA_CUDA_TMA=0 or MOBA_CUDA_FILL_SPAN=0; a tree that does not know the
# variable runs its default again; SAME=1 compares outputs bit for bit, see
# below), then for
# each case of CASES="seqlen:batch:block:topk ..." (default: 128K
# blk128/top8 and 256K with 16384-key blocks, the paper's block size at a
# quarter of its length: a 1M point's inputs took ~90 s to make before
# moba-bench made them in parallel, and base trees older than that still
# do) ncu's per-kernel times of every tree, once per MOBA_CUDA_KERNEL value
# in NEW_KERNELS (default: "default"; e.g. "default mma"), and, with
# arguments, tools/bench_vs_torch.py --only moba ARGS with each library,
# alternated twice.  The ncu cases are at D = 128, or at AB_HEAD_DIM.
# Logs go to $OUT.
set -u
cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
prepare)
    [ $# -gt 0 ] || { echo "usage: device_ab.sh prepare REV..." >&2; exit 2; }
    rm -rf .ab-base && mkdir .ab-base || exit 1
    i=0
    for rev in "$@"; do
        i=$((i + 1)) sha=$(git rev-parse --short=8 "$rev") || exit 1
        d=.ab-base/$i-$sha
        mkdir "$d" && git archive "$rev" | tar -x -C "$d" || exit 1
        git rev-parse "$rev" > "$d/REVISION"
        echo "base $i: $rev = $(cat "$d/REVISION") in $d/"
    done
    echo "carry .ab-base"
    exit 0 ;;
run) ;;
*) echo "usage: device_ab.sh prepare REV... | run [bench_vs_torch args]" >&2; exit 2 ;;
esac
bases=$(ls -d .ab-base/[0-9]*-* 2>/dev/null | sort -t/ -k2 -n)
[ -n "$bases" ] || { echo "device_ab.sh: no .ab-base/N-REV/; run 'prepare REV...' first" >&2; exit 2; }
source "$(dirname "$0")/device_env.sh" || exit 1
here=$PWD
# trees: label=source dir; the label names the build dir build-ab-LABEL
trees=
for d in $bases; do
    l=${d#.ab-base/}; trees="$trees $l=$here/$d"
    echo "base $l: $(cat "$d/REVISION")"
done
trees="$trees new=$here"
# All at once (16 cores: three trees took ~200 s one after the other).
pids=
for t in $trees; do
    device_build "${t#*=}" "$here/build-ab-${t%%=*}" -Dcuda=enabled -Dopencl=disabled \
        -Dhip=disabled -Dgpu_archs=90a & pids="$pids $!"
done
for p in $pids; do wait "$p" || exit 1; done
if ! nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; then
    echo "device_ab.sh: no NVIDIA GPU here; the builds are all there is to do" >&2
    exit 77
fi
export MOBA_CACHE_DIR=/tmp/moba-cache
first=${bases%%$'\n'*}; first=${first#.ab-base/}
failed= # tree:kernel pairs whose conformance failed: not timed (a hang would eat the call)
if [ "${NOTEST:-}" != 1 ]; then
    for t in $trees; do
        l=${t%%=*} b=$here/build-ab-${t%%=*}
        [ "$l" = "$first" ] && continue
        [ "${NOTEST:-}" = bases ] && [ "$l" != new ] && continue
        MOBA_PLUGIN_DIR=$b/backends/cuda timeout 90 meson test -C "$b" \
            conformance-cuda unit-core --print-errorlogs > "$OUT/test-$l.log" 2>&1
        rc=$?; [ $rc = 0 ] || failed="$failed $l:default"
        echo "$l: conformance-cuda + unit-core rc=$rc"; grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test-$l.log"
        case "${NOTEST:-}" in bases|lean) kerns= ;; *) kerns="mma simt" ;; esac
        for kern in $kerns; do
            MOBA_CUDA_KERNEL=$kern MOBA_PLUGIN_DIR=$b/backends/cuda timeout 90 \
                meson test -C "$b" conformance-cuda --print-errorlogs > "$OUT/test-$l-$kern.log" 2>&1
            rc=$?; [ $rc = 0 ] || failed="$failed $l:$kern"
            echo "$l: conformance-cuda with MOBA_CUDA_KERNEL=$kern rc=$rc"
            grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test-$l-$kern.log"
        done
        # Two CTAs per persistent kernel: each runs many tiles (and, in the
        # long-block kernels, many tile pairs through one ring).
        MOBA_CUDA_GRID=2 MOBA_PLUGIN_DIR=$b/backends/cuda timeout 120 \
            meson test -C "$b" conformance-cuda --print-errorlogs > "$OUT/test-$l-grid2.log" 2>&1
        rc=$?; [ $rc = 0 ] || failed="$failed $l:grid2"
        echo "$l: conformance-cuda with MOBA_CUDA_GRID=2 rc=$rc"
        grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/test-$l-grid2.log"
        for v in ${TEST_ENVS:-}; do
            log=$OUT/test-$l-${v//[^A-Za-z0-9]/_}.log
            env "$v" MOBA_PLUGIN_DIR=$b/backends/cuda timeout 120 \
                meson test -C "$b" conformance-cuda --print-errorlogs > "$log" 2>&1
            rc=$?; [ $rc = 0 ] || failed="$failed $l:default"
            echo "$l: conformance-cuda with $v rc=$rc"; grep -E '^ *[0-9]+/[0-9]+ ' "$log"
        done
    done
fi
# SAME=1: every tree's out and lse on scripts/make_cases.py's cases, bit for
# bit against the first tree's (for changes that keep the arithmetic), also
# with each SAME_ENVS="VAR=VALUE ..." assignment on this tree.
if [ -n "${SAME:-}" ]; then
    python3 "$here/scripts/make_cases.py" /tmp/moba-same > /dev/null || exit 1
    for cdir in /tmp/moba-same/*/; do
        n=$(basename "$cdir") ref=
        runs=; for t in $trees; do runs="$runs ${t%%=*}="; done
        for v in ${SAME_ENVS:-}; do runs="$runs new=$v"; done
        for r in $runs; do
            l=${r%%=*} v=${r#*=} f=$OUT/same-$n-${r//[^A-Za-z0-9]/_}
            env $v MOBA_PLUGIN_DIR=$here/build-ab-$l/backends/cuda timeout 60 \
                "$here/build-ab-$l/tools/moba-run" --backend cuda --out "$f.npy" \
                --lse "$f-lse.npy" "$cdir" > "$f.log" 2>&1 || { echo "same $n $r: moba-run failed: $(tail -1 "$f.log")"; continue; }
            if [ -z "$ref" ]; then ref=$f; continue; fi
            if cmp -s "$ref.npy" "$f.npy" && cmp -s "$ref-lse.npy" "$f-lse.npy"; then
                echo "same $n $r: out and lse bitwise equal to ${ref##*/}"
            else
                echo "same $n $r: DIFFERS from ${ref##*/}"; failed="$failed ${l}:default"
            fi
        done
    done
fi
for c in ${CASES:-131072:2:128:8 262144:1:16384:3}; do
    IFS=: read -r sl bt bl tk <<< "$c"
    for kern in ${NEW_KERNELS:-default}; do for t in $trees; do
        l=${t%%=*} b=$here/build-ab-${t%%=*}
        case " $failed " in *" $l:$kern "*) echo "$l $kern $c: skipped (conformance failed)"; continue ;; esac
        f=$OUT/ncu-$l-$kern-$sl-$bl.csv
        # The gate-alone runs of gate_ms would add a second gate to the sums:
        # skipped where moba-bench can, cut off below where it cannot.
        nog=; "$b/tools/moba-bench" --help 2>&1 | grep -q -- --no-gate-ms && nog=--no-gate-ms
        MOBA_CUDA_KERNEL=$kern MOBA_PLUGIN_DIR=$b/backends/cuda timeout 120 \
            ncu --metrics gpu__time_duration.sum --csv \
            "$b/tools/moba-bench" --quiet --backend cuda --seqlen "$sl" --batch "$bt" --q-heads 16 \
            --head-dim "${AB_HEAD_DIM:-128}" --block-size "$bl" --top-k "$tk" --dtype bf16 --no-dense --warmup 0 \
            --iters 1 $nog > "$f" 2> "${f%.csv}.err" || echo "ncu $l $kern $c failed: $(tail -2 "${f%.csv}.err")"
        python3 - "$f" "$l $kern $c" <<'PY'
import collections, csv, sys
rows = [l for l in open(sys.argv[1]) if l.startswith('"')]
ms = {'ns': 1e-6, 'nsecond': 1e-6, 'us': 1e-3, 'usecond': 1e-3, 'ms': 1.0, 'msecond': 1.0,
      's': 1e3, 'second': 1e3}
t = collections.OrderedDict()
first = None
for r in csv.DictReader(rows):
    if r.get('Metric Name') == 'gpu__time_duration.sum':
        k = r['Kernel Name'].split('<')[0].split('(')[0].replace('void ', '')
        if k == first:
            break  # the forward is over: what follows is the gate timed alone
        first = first or k
        t[k] = t.get(k, 0.0) + float(r['Metric Value'].replace(',', '')) * ms[r['Metric Unit']]
print('%-32s' % sys.argv[2], '  '.join('%s %.3f' % kv for kv in t.items()),
      ' total %.2f ms' % sum(t.values()))
PY
    done; done
done
if [ $# -gt 0 ]; then
    for rep in 1 2; do for t in $trees; do
        l=${t%%=*}
        echo "== $l"
        MOBA_PLUGIN_DIR=$here/build-ab-$l/backends/cuda PYTHONUNBUFFERED=1 timeout 200 \
            python3 tools/bench_vs_torch.py --lib "build-ab-$l/libmoba.so" --only moba "$@" 2>&1 |
            grep -v Warning | tee -a "$OUT/bench.log" | grep -E '^B[0-9]'
    done; done
fi

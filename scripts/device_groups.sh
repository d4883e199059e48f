#!/bin/bash
# Head groups x the persistent attention's grid cap, end to end
# (moba-bench medians of gate + attend), on the lent GPU machine (the
# device tool), from the repository root; carry .devdeps and .whl.
# docs/perf.md CUDA v28 has what it measured: whether the next group's
# gate shares the SMs with this group's attention when the attention is
# held to one CTA per SM (it did not pay).
#
#   bash scripts/device_groups.sh
#
# CONFIGS="G:grid ..." (MOBA_CUDA_HEAD_GROUPS and MOBA_CUDA_GRID, 0: no
# cap), SHAPES="seqlen:batch:block:topk ...".  (v28's priority column
# needed a knob that only its experiment branch had.)
set -u
source "$(dirname "$0")/device_env.sh" || exit 1
device_cuda_only build-groups || exit $?
SMS=$(nvidia-smi --query-gpu=multiprocessor_count --format=csv,noheader 2>/dev/null | head -1)
[ -n "$SMS" ] && [ "$SMS" -gt 0 ] 2>/dev/null || SMS=132
MOBA_CUDA_HEAD_GROUPS=4 MOBA_CUDA_GRID=$SMS timeout 150 meson test -C "$B" conformance-cuda \
    --print-errorlogs > "$OUT/test.log" 2>&1
rc=$?
echo "conformance-cuda (4 head groups, grid cap $SMS): rc=$rc"
[ $rc = 0 ] || { grep -iE 'fail|error' "$OUT/test.log" | head -20; exit 1; }
SHAPES=${SHAPES:-"131072:2:128:8 524288:2:128:8"}
CONFIGS=${CONFIGS:-"1:0 1:$SMS 2:0 2:$SMS 4:0 4:$SMS 8:0 8:$SMS 16:$SMS 1:0"}
printf '%-14s' "G:grid"
for s in $SHAPES; do printf ' %16s' "$s"; done
echo
for c in $CONFIGS; do
    IFS=: read -r g gr <<< "$c"
    printf '%-14s' "$c"
    for s in $SHAPES; do
        IFS=: read -r sl bt bl tk <<< "$s"
        ms=$(MOBA_CUDA_HEAD_GROUPS=$g MOBA_CUDA_GRID=$gr timeout 120 \
            "$B/tools/moba-bench" --quiet --csv --backend cuda --seqlen "$sl" --batch "$bt" \
            --q-heads 16 --head-dim 128 --block-size "$bl" --top-k "$tk" --dtype bf16 \
            --no-dense --no-gate-ms --warmup 3 --iters 11 | awk -F, 'NR == 2 { print $13 }')
        printf ' %16s' "${ms:-fail}"
    done
    echo
done
